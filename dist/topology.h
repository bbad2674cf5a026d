// The world as a grid: tensor-parallel groups of `tp` consecutive ranks (they share a node's
// fast links), data-parallel groups across them. Rank r sits at tp_rank = r % tp and
// dp_rank = r / tp.
//
//   ranks 0 1 | 2 3 | 4 5      tp = 2, dp = 3
//   tp groups {0,1} {2,3} {4,5}; dp groups {0,2,4} {1,3,5}
#pragma once
#include "dist/group.h"

namespace spectra::dist {

struct Topology {
  int tp = 1, dp = 1;
  int tp_rank = 0, dp_rank = 0;
  Group world, tp_group, dp_group;

  // dp = 0 means world size / tp. Throws a UserError (naming `where`, e.g. the recipe) when the
  // world cannot be laid out this way.
  static Topology create(int tp, int dp, const std::string& where);
};

// The same checks without MPI: throws the UserError create() would, for a world of `world` ranks.
void check_layout(int tp, int dp, int world, const std::string& where);

// A user error that every rank has agreed on (fail_together): main() exits with code 2, the
// reporting rank prints it, and no rank aborts the job.
struct AgreedError {
  std::string message;
  bool report;
};
// Collective over the world, called by every rank at the same point before any other
// collective: if any rank passes a non-empty error, every rank throws AgreedError, and only the
// lowest failing rank reports it (one line, however many ranks failed the same way).
void fail_together(const std::string& error);

}  // namespace spectra::dist
