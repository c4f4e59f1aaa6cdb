// signals.c — SIGINT and SIGTERM in a built program, and the registry of temporary files.
//
// While nn_fit runs, the first signal only sets a flag: the training loop finishes the
// step it is in, writes what it must (runtime/backup.c) and exits 128 + signal. Outside
// training, or at a second signal, the handler stops at once. Either way no temporary
// file stays behind: every file an atomic write creates is registered here before it
// has a name anyone could see, and the handler unlinks the registered ones with unlink(2)
// and _exit(2) only, which are async-signal-safe.
#define _GNU_SOURCE
#include "rt.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_TEMPS 8

static volatile sig_atomic_t pending;      // the first signal seen during training, or 0
static volatile sig_atomic_t training;     // nn_fit's loop is running
static char temps[MAX_TEMPS][4096];
static volatile sig_atomic_t temp_used[MAX_TEMPS];

static void say(const char *s) {
  ssize_t r = write(STDERR_FILENO, s, strlen(s));
  (void)r;
}

static void remove_temps(void) {
  for (int i = 0; i < MAX_TEMPS; i++)
    if (temp_used[i])
      unlink(temps[i]);
}

static void on_signal(int sig) {
  if (training && !pending) {
    pending = sig;
    say(sig == SIGINT ? "\nstopping after this step (Ctrl-C again stops at once)\n"
                      : "\nstopping after this step\n");
    return;
  }
  remove_temps();
  say(training ? "\ninterrupted again: stopped at once\n" : "\ninterrupted\n");
  _exit(128 + sig);
}

void rt_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void rt_signals_training(bool on) {
  training = on;
  if (!on)
    pending = 0;
}

int rt_signals_pending(void) { return pending; }

void rt_signals_block(bool block) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

int rt_temp_register(const char *path) {
  if (strlen(path) >= sizeof temps[0])
    return -1;
  for (int i = 0; i < MAX_TEMPS; i++)
    if (!temp_used[i]) {
      strcpy(temps[i], path);
      temp_used[i] = 1;   // after the name is complete: the handler reads it only then
      return i;
    }
  return -1;
}

void rt_temp_forget(int slot) {
  if (slot >= 0 && slot < MAX_TEMPS)
    temp_used[slot] = 0;
}
