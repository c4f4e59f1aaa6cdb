// sys.c — the clock, and how many kernel threads a program runs and how they wait.
//
// Threads: --threads N, else OMP_NUM_THREADS, else the CPUs this process may use: its
// affinity mask (taskset, cpusets) and its cgroup CPU quota (docker --cpus, systemd
// CPUQuota), the smaller.
//
// Waiting: libgomp's threads spin at every barrier (hundreds of thousands of spins by
// default) before they sleep. On cores another process also wants, a spinning thread
// burns the time slice its preempted partner needs to reach the barrier, and a train
// step is tens of parallel regions: epochs ran 10 to 25 times slower than on one thread.
// Passive waiting (sleep on a futex at once) costs a wake-up per region instead, which
// is small next to a region's work. libgomp reads OMP_WAIT_POLICY only once, in its own
// constructor, before main; a constructor of ours is not reliably earlier (a dynamic
// libgomp, NNC_DYNAMIC_OPENMP, is initialized before the program). So a program that
// will run more than one thread and whose user set neither OMP_WAIT_POLICY nor
// GOMP_SPINCOUNT sets OMP_WAIT_POLICY=passive and executes itself again, once (the
// variable is then set, so the second start goes on). Same pid, same arguments.
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

double nn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// CPUs a quota of `quota` per `period` (both microseconds) allows, rounded up (1.5 CPUs
// run 2 threads, each busy three quarters of the time); 0 when there is no limit.
int nn_cpus_from_quota(long long quota, long long period) {
  if (quota <= 0 || period <= 0)
    return 0;
  long long n = (quota + period - 1) / period;
  return n > 4096 ? 4096 : (int)n;
}

// cgroup v2's cpu.max: "max 100000" (no limit) or "QUOTA PERIOD"; 0 for no limit or
// anything unreadable.
int nn_cpus_from_cpu_max(const char *text) {
  if (!text)
    return 0;
  char *end;
  while (*text == ' ' || *text == '\t')
    text++;
  if (!strncmp(text, "max", 3))
    return 0;
  errno = 0;
  long long quota = strtoll(text, &end, 10);
  if (errno || end == text || (*end != ' ' && *end != '\t'))
    return 0;
  const char *p = end;
  long long period = strtoll(p, &end, 10);
  if (errno || end == p || (*end && *end != '\n' && *end != ' '))
    return 0;
  return nn_cpus_from_quota(quota, period);
}

static bool read_small(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = 0;
  return n > 0;
}

// The smallest limit n > 0 of a and b, 0 when neither limits.
static int tighter(int a, int b) { return a <= 0 ? b : b <= 0 ? a : a < b ? a : b; }

// The cgroup CPU quota as a CPU count, 0 when none: v2's cpu.max of this process's group
// and of each group above it (a parent's limit binds the children), then v1's CFS quota.
static int cgroup_cpus(void) {
  int cpus = 0;
  char line[4096], path[4200], buf[128];
  FILE *f = fopen("/proc/self/cgroup", "r");
  char v2[4096] = "", v1[4096] = "";
  if (f) {
    while (fgets(line, sizeof line, f)) {
      line[strcspn(line, "\n")] = 0;
      if (!strncmp(line, "0::", 3))
        snprintf(v2, sizeof v2, "%s", line + 3);
      else {
        // "N:cpu,cpuacct:/path" (the controller list may name cpu anywhere)
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 && c2) {
          *c2 = 0;
          for (char *tok = strtok(c1 + 1, ","); tok; tok = strtok(NULL, ","))
            if (!strcmp(tok, "cpu"))
              snprintf(v1, sizeof v1, "%s", c2 + 1);
        }
      }
    }
    fclose(f);
  }
  // v2: from the group up to the mount's root. Inside a cgroup namespace the path is
  // "/" and the mount's root is the container's own group.
  for (;;) {
    snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", strcmp(v2, "/") ? v2 : "");
    if (read_small(path, buf, sizeof buf))
      cpus = tighter(cpus, nn_cpus_from_cpu_max(buf));
    char *slash = strrchr(v2, '/');
    if (!slash || slash == v2)
      break;
    *slash = 0;
  }
  // The mount's root: a container's own group when its path is not visible inside.
  if (read_small("/sys/fs/cgroup/cpu.max", buf, sizeof buf))
    cpus = tighter(cpus, nn_cpus_from_cpu_max(buf));
  // v1: the group's own quota where it is mounted under its path, and the mount's root.
  static const char *mounts[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
  for (int m = 0; m < 2; m++)
    for (int own = 0; own < 2; own++) {
      const char *sub = own && strcmp(v1, "/") ? v1 : "";
      if (own && !*sub)
        continue;
      char qbuf[64], pbuf[64];
      snprintf(path, sizeof path, "%s%s/cpu.cfs_quota_us", mounts[m], sub);
      if (!read_small(path, qbuf, sizeof qbuf))
        continue;
      snprintf(path, sizeof path, "%s%s/cpu.cfs_period_us", mounts[m], sub);
      if (!read_small(path, pbuf, sizeof pbuf))
        continue;
      cpus = tighter(cpus, nn_cpus_from_quota(atoll(qbuf), atoll(pbuf)));
    }
  return cpus;
}

// The CPUs this process may run on (its affinity mask), 0 if unknown.
static int affinity_cpus(void) {
  for (int n = 1024; n <= (1 << 16); n *= 2) {
    cpu_set_t *set = CPU_ALLOC(n);
    if (!set)
      return 0;
    size_t size = CPU_ALLOC_SIZE(n);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      int count = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return count;
    }
    CPU_FREE(set);
    if (errno != EINVAL)
      return 0;
  }
  return 0;
}

int nn_default_threads(void) {
  int n = tighter(affinity_cpus(), cgroup_cpus());
  if (n <= 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    n = online > 0 ? (int)online : 1;
  }
  return n;
}

void nn_set_threads(int n) {
#ifdef _OPENMP
  // 0: OMP_NUM_THREADS when set, else the CPUs this process may use.
  if (n <= 0 && !getenv("OMP_NUM_THREADS"))
    n = nn_default_threads();
  if (n > 0)
    omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int nn_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Executes this program again with OMP_WAIT_POLICY=passive (see the top of the file);
// returns only when it does not (the user chose a policy, or exec failed).
static void reexec_passive(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv || !argv[0])
    return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
    return;
  fflush(NULL);
  // The program's own path, not /proc/self/exe itself: the kernel names a process after
  // the file it executes, and "exe" would hide it from ps, top and pkill.
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len > 0) {
    self[len] = 0;
    execv(self, argv);
  }
  execv("/proc/self/exe", argv);
  // No /proc: the path we were started by, unless the program was found on $PATH.
  if (strchr(argv[0], '/'))
    execv(argv[0], argv);
  // Still here: run on with libgomp's spinning, which only hurts on shared cores.
}

void nn_start_threads(nn_options *o, char **argv) {
  nn_set_threads(o->threads);
  int n = nn_threads();
#ifdef _OPENMP
  if (n > 1)
    reexec_passive(argv);
#else
  (void)argv;
#endif
  o->threads = n;
  rt_signals_install();   // after any re-execution, which would reset the handlers
  if (o->json) {
    printf("{\"threads\":%d}\n", n);
    fflush(stdout);
  }
}
