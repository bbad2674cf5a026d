#include "dist/roll_call.h"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace spectra::dist {

namespace {

// Calls and answers are messages with no payload: who sent one is all they say.
constexpr int kCall = 1, kAnswer = 2;
MPI_Comm g_comm = MPI_COMM_NULL;        // the world's ranks, apart from every collective
MPI_Request g_call = MPI_REQUEST_NULL;  // the next call, from any rank

void listen() { MPI_Irecv(nullptr, 0, MPI_BYTE, MPI_ANY_SOURCE, kCall, g_comm, &g_call); }

// A send that completes on its own (nothing to keep alive: no payload).
void send_and_forget(int to, int tag) {
  MPI_Request r = MPI_REQUEST_NULL;
  if (MPI_Isend(nullptr, 0, MPI_BYTE, to, tag, g_comm, &r) == MPI_SUCCESS) MPI_Request_free(&r);
}

std::string name_ranks(const std::vector<int>& ranks) {
  constexpr size_t kNamed = 8;  // then a count: a 64-rank job's line stays one line
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size() && i < kNamed; i++) {
    if (i > 0) out += i + 1 == ranks.size() ? " and " : ", ";
    out += std::to_string(ranks[i]);
  }
  if (ranks.size() > kNamed) out += fmt::format(" and {} more", ranks.size() - kNamed);
  return out;
}

}  // namespace

void open_roll_call() {
  if (g_comm != MPI_COMM_NULL) return;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &g_comm) != MPI_SUCCESS) return;  // then no roll calls
  listen();
}

void close_roll_call() {
  if (g_comm == MPI_COMM_NULL) return;
  MPI_Cancel(&g_call);
  MPI_Wait(&g_call, MPI_STATUS_IGNORE);
  MPI_Comm_free(&g_comm);
  g_comm = MPI_COMM_NULL;
}

void answer_roll_calls() {
  if (g_comm == MPI_COMM_NULL) return;
  for (;;) {
    int arrived = 0;
    MPI_Status status;
    if (MPI_Test(&g_call, &arrived, &status) != MPI_SUCCESS || !arrived) return;
    send_and_forget(status.MPI_SOURCE, kAnswer);
    listen();
  }
}

std::string call_the_roll(double seconds) {
  if (g_comm == MPI_COMM_NULL) return "";
  int me = 0, n = 1;
  MPI_Comm_rank(g_comm, &me);
  MPI_Comm_size(g_comm, &n);
  std::vector<MPI_Request> answers(size_t(n), MPI_REQUEST_NULL);
  for (int r = 0; r < n; r++) {
    if (r == me) continue;
    MPI_Irecv(nullptr, 0, MPI_BYTE, r, kAnswer, g_comm, &answers[size_t(r)]);
    send_and_forget(r, kCall);
  }
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(std::max(0.0, seconds));
  for (bool waiting = true; waiting && std::chrono::steady_clock::now() < until;) {
    answer_roll_calls();  // the other callers count on this rank too
    waiting = false;
    for (MPI_Request& a : answers) {
      int done = 1;
      if (a != MPI_REQUEST_NULL) MPI_Test(&a, &done, MPI_STATUS_IGNORE);  // done: a is null
      waiting = waiting || !done;
    }
    if (waiting) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<int> silent;
  for (int r = 0; r < n; r++) {
    MPI_Request& a = answers[size_t(r)];
    if (a == MPI_REQUEST_NULL) continue;
    silent.push_back(r);
    MPI_Cancel(&a);
    MPI_Request_free(&a);
  }
  return silent.empty() ? "" : name_ranks(silent);
}

}  // namespace spectra::dist
