// options.c — a built program's command line: --epochs N --batch-size N --seed N
// --threads N --data-dir DIR --resume DIR --check-numerics --quiet --json --plot FILE --help,
// each also as --name=value.
#include "rt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s [options]\n"
          "Runs the model script this program was built from.\n"
          "\n"
          "  --epochs N       train for N epochs instead of the script's\n"
          "  --batch-size N   training batch size instead of the script's\n"
          "  --seed N         seed for initialization, shuffling and dropout (same seed, same run)\n"
          "  --threads N      kernel threads; default (0): $OMP_NUM_THREADS, else the CPUs this\n"
          "                   process may use (affinity mask, cgroup CPU quota: the smaller)\n"
          "  --device N       OpenCL device (programs built with --target opencl; see nnc devices)\n"
          "  --data-dir DIR   look for data sets in DIR/<name>/ first\n"
          "  --resume DIR     back up training to DIR and resume from it (as BackupAndRestore)\n"
          "  --check-numerics stop at the first NaN or Inf, naming the node that produced it\n"
          "  --quiet          no progress bars or epoch lines; print() output and evaluate's results stay\n"
          "  --json           JSON lines only on stdout: one object per epoch, evaluation and print\n"
          "  --plot FILE.svg  draw each fit's training curves (loss and metrics per epoch) as SVG\n"
          "  --help           this text\n",
          prog);
}

static void die(const char *fmt, const char *a, const char *b) {
  fputs("error: ", stderr);
  fprintf(stderr, fmt, a, b);
  fputs(" (try --help)\n", stderr);
  exit(1);
}

// A whole decimal integer in [lo, hi]; anything else is an error naming the option.
static int64_t integer(const char *opt, const char *text, int64_t lo, int64_t hi) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (!*text || *end || errno || v < lo || v > hi) {
    char range[192];
    snprintf(range, sizeof range, "%s expects an integer in [%lld, %lld], got '%%s'", opt,
             (long long)lo, (long long)hi);
    die(range, text, "");
  }
  return v;
}

void nn_parse_options(nn_options *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->epochs = -1;
  o->batch_size = -1;
  o->device = -1;
  const char *prog = argc > 0 && argv[0] ? argv[0] : "program";
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    char name[64];
    const char *value = NULL;
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof name) {
      memcpy(name, arg, eq - arg);
      name[eq - arg] = 0;
      value = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", arg);
    }
    bool flag = !strcmp(name, "--quiet") || !strcmp(name, "--json") || !strcmp(name, "--help") ||
                !strcmp(name, "-h") || !strcmp(name, "--check-numerics");
    if (flag) {
      if (value)
        die("%s takes no value%s", name, "");
      if (!strcmp(name, "--quiet"))
        o->quiet = true;
      else if (!strcmp(name, "--json"))
        o->json = true;
      else if (!strcmp(name, "--check-numerics"))
        o->check_numerics = true;
      else {
        usage(stdout, prog);
        exit(0);
      }
      continue;
    }
    bool known = !strcmp(name, "--epochs") || !strcmp(name, "--batch-size") ||
                 !strcmp(name, "--seed") || !strcmp(name, "--threads") ||
                 !strcmp(name, "--data-dir") || !strcmp(name, "--device") ||
                 !strcmp(name, "--resume") || !strcmp(name, "--plot");
    if (!known)
      die("unknown option '%s'%s", arg, "");
    if (!value) {
      if (i + 1 >= argc)
        die("%s needs a value%s", name, "");
      value = argv[++i];
    }
    if (!strcmp(name, "--epochs"))
      o->epochs = integer(name, value, 0, INT64_MAX);
    else if (!strcmp(name, "--batch-size"))
      o->batch_size = integer(name, value, 1, 1 << 30);
    else if (!strcmp(name, "--threads"))
      o->threads = (int)integer(name, value, 0, 4096);
    else if (!strcmp(name, "--device"))
      o->device = (int)integer(name, value, 0, 4096);
    else if (!strcmp(name, "--resume")) {
      if (!*value)
        die("%s needs a directory%s", name, "");
      o->resume_dir = value;
    } else if (!strcmp(name, "--plot")) {
      if (!*value)
        die("%s needs a file name%s", name, "");
      o->plot = value;
    } else if (!strcmp(name, "--data-dir")) {
      if (!*value)
        die("%s needs a directory%s", name, "");
      o->data_dir = value;
    } else {
      // Seeds are unsigned 64-bit; no sign, nothing after the digits.
      char *end;
      errno = 0;
      unsigned long long v = strtoull(value, &end, 10);
      if (!*value || *end || errno || value[0] == '-' || value[0] == '+' || value[0] == ' ')
        die("--seed expects a non-negative integer, got '%s'%s", value, "");
      o->seed = v;
      o->seed_set = true;
    }
  }
}
