// Naming the rank that hangs. A rank whose host collective has waited past parallel.timeout_s
// (dist/watchdog.h) calls the roll before it ends the job: on a communicator of their own it asks
// every other rank to answer, and waits a moment for them. A rank answers whenever it waits in a
// host collective itself (dist/group.cpp's waits poll for calls), or calls the roll too; so the
// ranks that do not answer are the ones stopped, dead, or stuck outside every collective, and the
// error line names them. (A rank that is killed is named by mpirun; one that throws names
// itself, tools/main.cpp.)
//
//   open_roll_call();                       // once, after MPI_Init (collective over the world)
//   while (!done) answer_roll_calls();      // in every host wait
//   std::string silent = call_the_roll(2);  // after the timeout: "rank 3", "ranks 2 and 5", ""
//   close_roll_call();                      // before MPI_Finalize
#pragma once
#include <string>

namespace spectra::dist {

// Seconds a caller waits for the answers: every other waiting rank polls in a tight loop, so
// this is only the slack of a loaded machine.
constexpr double kRollCallSeconds = 2;

void open_roll_call();
void close_roll_call();
// Answers every call that has arrived (a message with no payload back to each caller).
void answer_roll_calls();
// Asks every other rank of the world and returns the ones that did not answer within `seconds`
// ("" if all did), answering the others' calls meanwhile.
std::string call_the_roll(double seconds);

}  // namespace spectra::dist
