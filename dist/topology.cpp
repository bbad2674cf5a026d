#include "dist/topology.h"

namespace spectra::dist {

Topology Topology::create(int tp, int dp, const std::string& where) {
  Topology t;
  t.world = Group::world();
  int n = t.world.size();
  if (tp < 1) user_error("{}: parallel.tp must be at least 1, got {}", where, tp);
  if (n % tp != 0)
    user_error("{}: parallel.tp {} does not divide the world size {} (launch a multiple of {} "
               "ranks)", where, tp, n, tp);
  if (dp == 0) dp = n / tp;
  if (tp * dp != n)
    user_error("{}: parallel.tp {} x parallel.dp {} = {} ranks, but the job has {} (set "
               "parallel.dp: auto or launch {} ranks)", where, tp, dp, tp * dp, n, tp * dp);
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
