#include "dist/topology.h"

#include <mpi.h>

#include <climits>

#include "dist/world.h"

namespace spectra::dist {

void check_layout(int tp, int dp, int n, const std::string& where) {
  if (tp < 1) user_error("{}: parallel.tp must be at least 1, got {}", where, tp);
  if (n % tp != 0)
    user_error(
        "{}: parallel.tp {} does not divide the world size {} (launch a multiple of {} "
        "ranks)",
        where, tp, n, tp);
  if (dp != 0 && tp * dp != n)
    user_error(
        "{}: parallel.tp {} x parallel.dp {} = {} ranks, but the job has {} (set "
        "parallel.dp: 0 for auto, or launch {} ranks)",
        where, tp, dp, tp * dp, n, tp * dp);
}

void fail_together(const std::string& error) {
  if (!initialized()) init(nullptr, nullptr);
  int mine = error.empty() ? INT_MAX : world_rank(), first = mine;
  if (world_size() > 1) MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first != INT_MAX) throw AgreedError{error, first == world_rank()};
}

Topology Topology::create(int tp, int dp, const std::string& where) {
  if (!initialized()) init(nullptr, nullptr);  // library use without the CLI: a world of one
  Topology t;
  t.world = Group::world();
  int n = t.world.size();
  check_layout(tp, dp, n, where);
  if (dp == 0) dp = n / tp;
  t.tp = tp;
  t.dp = dp;
  int r = t.world.rank();
  t.tp_rank = r % tp;
  t.dp_rank = r / tp;
  t.tp_group = t.world.split(t.dp_rank, t.tp_rank);
  t.dp_group = t.world.split(t.tp_rank, t.dp_rank);
  return t;
}

}  // namespace spectra::dist
