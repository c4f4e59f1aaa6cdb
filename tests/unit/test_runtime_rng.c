// test_runtime_rng.c — the generator: reference values, determinism, distributions,
// shuffles; plus the clock and the option parser.
#include "nn.h"
#include "test_runtime_util.h"

#include <math.h>
#include <sys/wait.h>

Test(rng, matches_reference_xoshiro256starstar) {
  // splitmix64(0) first output is the published 0xe220a8397b1dcdaf; xoshiro256** from
  // that state is computed independently here.
  nn_rng r;
  nn_rng_seed(&r, 0);
  cr_assert_eq(r.s[0], 0xe220a8397b1dcdafull);
  uint64_t s[4] = {r.s[0], r.s[1], r.s[2], r.s[3]};
  uint64_t x = s[1] * 5;
  uint64_t expect = ((x << 7) | (x >> 57)) * 9;
  cr_assert_eq(nn_rng_next(&r), expect);
}

Test(rng, same_seed_same_stream_other_seed_other_stream) {
  nn_rng a, b, c;
  nn_rng_seed(&a, 42);
  nn_rng_seed(&b, 42);
  nn_rng_seed(&c, 43);
  int differ = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t va = nn_rng_next(&a);
    cr_assert_eq(va, nn_rng_next(&b));
    differ += va != nn_rng_next(&c);
  }
  cr_assert_gt(differ, 990);
}

Test(rng, uniform_in_unit_interval_with_right_mean) {
  nn_rng r;
  nn_rng_seed(&r, 7);
  double sum = 0;
  for (int i = 0; i < 100000; i++) {
    double u = nn_rng_uniform(&r);
    cr_assert(u >= 0 && u < 1);
    sum += u;
  }
  cr_assert_float_eq(sum / 100000, 0.5, 0.01);
}

Test(rng, normal_has_zero_mean_unit_variance) {
  nn_rng r;
  nn_rng_seed(&r, 1);
  double s = 0, s2 = 0;
  int n = 200000;
  for (int i = 0; i < n; i++) {
    double v = nn_rng_normal(&r);
    cr_assert(isfinite(v));
    s += v;
    s2 += v * v;
  }
  cr_assert_float_eq(s / n, 0.0, 0.01);
  cr_assert_float_eq(s2 / n, 1.0, 0.02);
}

Test(rng, shuffle_is_a_deterministic_permutation) {
  int64_t a[100], b[100];
  for (int i = 0; i < 100; i++) a[i] = b[i] = i;
  nn_rng r1, r2;
  nn_rng_seed(&r1, 5);
  nn_rng_seed(&r2, 5);
  nn_rng_shuffle(&r1, a, 100);
  nn_rng_shuffle(&r2, b, 100);
  int seen[100] = {0}, moved = 0;
  for (int i = 0; i < 100; i++) {
    cr_assert_eq(a[i], b[i]);
    seen[a[i]]++;
    moved += a[i] != i;
  }
  for (int i = 0; i < 100; i++) cr_assert_eq(seen[i], 1);
  cr_assert_gt(moved, 80);
}

Test(rng, shuffle_positions_are_uniform) {
  // Element 0 should land in each of 4 slots about a quarter of the time.
  nn_rng r;
  nn_rng_seed(&r, 9);
  int count[4] = {0};
  for (int t = 0; t < 40000; t++) {
    int64_t v[4] = {0, 1, 2, 3};
    nn_rng_shuffle(&r, v, 4);
    for (int i = 0; i < 4; i++)
      if (v[i] == 0) count[i]++;
  }
  for (int i = 0; i < 4; i++) cr_assert(abs(count[i] - 10000) < 500, "slot %d: %d", i, count[i]);
}

Test(sys, clock_is_monotonic) {
  double a = nn_now();
  usleep(2000);
  double b = nn_now();
  cr_assert_gt(b - a, 0.0015);
  nn_set_threads(1);  // must not crash, with or without OpenMP
  nn_set_threads(0);
}

// cgroup quotas as CPU counts: rounded up, 0 for no limit or text that is not a quota.
Test(sys, cpu_max_parsing) {
  cr_assert_eq(nn_cpus_from_cpu_max("max 100000\n"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("max"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("100000 100000\n"), 1);
  cr_assert_eq(nn_cpus_from_cpu_max("200000 100000\n"), 2);
  cr_assert_eq(nn_cpus_from_cpu_max("150000 100000\n"), 2);
  cr_assert_eq(nn_cpus_from_cpu_max("50000 100000"), 1);
  cr_assert_eq(nn_cpus_from_cpu_max("1000 1000"), 1);
  cr_assert_eq(nn_cpus_from_cpu_max("800000 100000\n"), 8);
  cr_assert_eq(nn_cpus_from_cpu_max(""), 0);
  cr_assert_eq(nn_cpus_from_cpu_max(NULL), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("100000"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("abc 100000"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("100000 abc"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("-1 100000"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("100000 0"), 0);
  cr_assert_eq(nn_cpus_from_cpu_max("99999999999999999999 100000"), 0);  // overflow
  // v1: cpu.cfs_quota_us is -1 without a limit.
  cr_assert_eq(nn_cpus_from_quota(-1, 100000), 0);
  cr_assert_eq(nn_cpus_from_quota(250000, 100000), 3);
  cr_assert_eq(nn_cpus_from_quota(100000, 100000), 1);
}

Test(sys, default_threads_within_the_cpus) {
  int n = nn_default_threads();
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  cr_assert(n >= 1 && n <= online, "%d threads of %ld CPUs", n, online);
}

//
// nn_parse_options
//
Test(options, defaults) {
  char *argv[] = {"prog", NULL};
  nn_options o;
  nn_parse_options(&o, 1, argv);
  cr_assert_eq(o.epochs, -1);
  cr_assert_eq(o.batch_size, -1);
  cr_assert(!o.seed_set && !o.quiet && !o.json);
  cr_assert_null(o.data_dir);
}

Test(options, all_forms) {
  char *argv[] = {"prog", "--epochs", "3", "--batch-size=64", "--seed", "18446744073709551615",
                  "--threads=2", "--data-dir", "/d", "--quiet", "--json", NULL};
  nn_options o;
  nn_parse_options(&o, 11, argv);
  cr_assert_eq(o.epochs, 3);
  cr_assert_eq(o.batch_size, 64);
  cr_assert(o.seed_set);
  cr_assert_eq(o.seed, UINT64_MAX);
  cr_assert_eq(o.threads, 2);
  cr_assert_str_eq(o.data_dir, "/d");
  cr_assert(o.quiet && o.json);
}

static void parse(int argc, char **argv) {
  nn_options o;
  nn_parse_options(&o, argc, argv);
}

Test(options, negative_epochs_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--epochs", "-3", NULL};
  parse(3, argv);
}
Test(options, junk_after_number_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--batch-size=12x", NULL};
  parse(2, argv);
}
Test(options, zero_batch_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--batch-size", "0", NULL};
  parse(3, argv);
}
Test(options, negative_seed_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--seed", "-1", NULL};
  parse(3, argv);
}
Test(options, missing_value_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--epochs", NULL};
  parse(2, argv);
}
Test(options, unknown_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--fast", NULL};
  parse(2, argv);
}
Test(options, flag_with_value_exit_1, .exit_code = 1) {
  char *argv[] = {"prog", "--quiet=yes", NULL};
  parse(2, argv);
}
Test(options, help_exits_0_and_lists_options, .exit_code = 0) {
  char *argv[] = {"prog", "--help", NULL};
  capture c = capture_begin(1, "help.txt");
  pid_t pid = fork();
  if (pid == 0)
    parse(2, argv);
  int status;
  waitpid(pid, &status, 0);
  char *out = capture_end(&c);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cr_assert(strstr(out, "--epochs") && strstr(out, "--batch-size") && strstr(out, "--seed") &&
            strstr(out, "--threads") && strstr(out, "--data-dir") && strstr(out, "--quiet") &&
            strstr(out, "--json"));
  free(out);
}
