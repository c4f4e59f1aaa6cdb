// json.c — a small strict JSON parser (RFC 8259) for safetensors headers.
//
// Nodes live in one growable array and refer to each other by index; decoded strings
// live in one buffer as long as the input (decoding never lengthens a string).
// Rejected: trailing commas, comments, unescaped control characters, bad escapes or
// UTF-16 surrogates, leading zeros, duplicate keys, nesting deeper than 64, junk after
// the value.
#include "rt.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
  rt_json *j;
  const char *p, *end, *start;
  char *out;               // next free byte in j->strings
  char *err;
  size_t errsize;
  int depth;
} parser;

static int fail(parser *P, const char *what) {
  if (!P->err[0])
    snprintf(P->err, P->errsize, "%s at byte %ld", what, (long)(P->p - P->start));
  return -1;
}

static void skip_ws(parser *P) {
  while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
    P->p++;
}

static int new_node(parser *P, rt_json_kind kind) {
  rt_json *j = P->j;
  if (j->n == j->cap) {
    int cap = j->cap ? j->cap * 2 : 64;
    rt_json_node *bigger = realloc(j->nodes, sizeof *bigger * cap);
    if (!bigger)
      return fail(P, "out of memory");
    j->nodes = bigger;
    j->cap = cap;
  }
  rt_json_node *n = &j->nodes[j->n];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->first = n->next = -1;
  return j->n++;
}

static int hex4(parser *P, unsigned *v) {
  if (P->end - P->p < 4)
    return fail(P, "bad \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *P->p++;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0)
      return fail(P, "bad \\u escape");
    *v = *v * 16 + d;
  }
  return 0;
}

// Parses a string at P->p (on the quote); returns the decoded copy in j->strings.
static const char *parse_string(parser *P) {
  P->p++;
  char *s = P->out;
  while (P->p < P->end && *P->p != '"') {
    unsigned char c = *P->p++;
    if (c < 0x20) {
      fail(P, "control character in string");
      return NULL;
    }
    if (c != '\\') {
      *P->out++ = c;
      continue;
    }
    if (P->p >= P->end)
      break;
    char e = *P->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char decoded[] = "\"\\/\b\f\n\r\t";
      *P->out++ = decoded[simple - "\"\\/bfnrt"];
      continue;
    }
    if (e != 'u') {
      fail(P, "bad escape in string");
      return NULL;
    }
    unsigned u;
    if (hex4(P, &u))
      return NULL;
    if (u >= 0xDC00 && u <= 0xDFFF) {
      fail(P, "lone low surrogate");
      return NULL;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
      unsigned lo;
      if (P->end - P->p < 2 || P->p[0] != '\\' || P->p[1] != 'u') {
        fail(P, "lone high surrogate");
        return NULL;
      }
      P->p += 2;
      if (hex4(P, &lo))
        return NULL;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        fail(P, "bad surrogate pair");
        return NULL;
      }
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    // UTF-8: at most 4 bytes, never longer than the 6- or 12-byte escape it replaces.
    if (u < 0x80) {
      *P->out++ = u;
    } else if (u < 0x800) {
      *P->out++ = 0xC0 | (u >> 6);
      *P->out++ = 0x80 | (u & 63);
    } else if (u < 0x10000) {
      *P->out++ = 0xE0 | (u >> 12);
      *P->out++ = 0x80 | ((u >> 6) & 63);
      *P->out++ = 0x80 | (u & 63);
    } else {
      *P->out++ = 0xF0 | (u >> 18);
      *P->out++ = 0x80 | ((u >> 12) & 63);
      *P->out++ = 0x80 | ((u >> 6) & 63);
      *P->out++ = 0x80 | (u & 63);
    }
  }
  if (P->p >= P->end) {
    fail(P, "unterminated string");
    return NULL;
  }
  P->p++;
  *P->out++ = 0;
  return s;
}

static int parse_number(parser *P, int node) {
  const char *s = P->p;
  bool integer = true;
  if (P->p < P->end && *P->p == '-')
    P->p++;
  if (P->p >= P->end || *P->p < '0' || *P->p > '9')
    return fail(P, "bad number");
  if (*P->p == '0' && P->p + 1 < P->end && P->p[1] >= '0' && P->p[1] <= '9')
    return fail(P, "leading zero in number");
  while (P->p < P->end && *P->p >= '0' && *P->p <= '9') P->p++;
  if (P->p < P->end && *P->p == '.') {
    integer = false;
    P->p++;
    if (P->p >= P->end || *P->p < '0' || *P->p > '9')
      return fail(P, "bad number");
    while (P->p < P->end && *P->p >= '0' && *P->p <= '9') P->p++;
  }
  if (P->p < P->end && (*P->p == 'e' || *P->p == 'E')) {
    integer = false;
    P->p++;
    if (P->p < P->end && (*P->p == '+' || *P->p == '-'))
      P->p++;
    if (P->p >= P->end || *P->p < '0' || *P->p > '9')
      return fail(P, "bad number");
    while (P->p < P->end && *P->p >= '0' && *P->p <= '9') P->p++;
  }
  char buf[64];
  size_t len = P->p - s;
  rt_json_node *n = &P->j->nodes[node];
  if (len >= sizeof buf) {
    n->num = s[0] == '-' ? -1e308 : 1e308;  // absurdly long: never a valid size
    return 0;
  }
  memcpy(buf, s, len);
  buf[len] = 0;
  n->num = strtod(buf, NULL);
  if (integer) {
    // Exact int64 (doubles lose precision above 2^53).
    bool neg = buf[0] == '-';
    uint64_t v = 0;
    bool fits = true;
    for (const char *d = buf + neg; *d; d++) {
      if (v > (UINT64_MAX - 9) / 10) fits = false;
      v = v * 10 + (*d - '0');
    }
    if (fits && v <= (uint64_t)INT64_MAX) {
      n->is_int = true;
      n->i64 = neg ? -(int64_t)v : (int64_t)v;
    }
  }
  return 0;
}

static int parse_value(parser *P);

static int parse_container(parser *P, bool object) {
  int node = new_node(P, object ? RT_JSON_OBJECT : RT_JSON_ARRAY);
  if (node < 0)
    return -1;
  if (++P->depth > 64)
    return fail(P, "nesting too deep");
  P->p++;
  skip_ws(P);
  int last = -1;
  if (P->p < P->end && *P->p == (object ? '}' : ']')) {
    P->p++;
    P->depth--;
    return node;
  }
  for (;;) {
    const char *key = NULL;
    skip_ws(P);
    if (object) {
      if (P->p >= P->end || *P->p != '"')
        return fail(P, "expected a member name");
      if (!(key = parse_string(P)))
        return -1;
      for (int c = P->j->nodes[node].first; c >= 0; c = P->j->nodes[c].next)
        if (strcmp(P->j->nodes[c].key, key) == 0)
          return fail(P, "duplicate key");
      skip_ws(P);
      if (P->p >= P->end || *P->p != ':')
        return fail(P, "expected ':'");
      P->p++;
    }
    int child = parse_value(P);
    if (child < 0)
      return -1;
    rt_json_node *nodes = P->j->nodes;  // may have moved
    nodes[child].key = key;
    if (last < 0)
      nodes[node].first = child;
    else
      nodes[last].next = child;
    last = child;
    nodes[node].count++;
    skip_ws(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      continue;
    }
    if (P->p < P->end && *P->p == (object ? '}' : ']')) {
      P->p++;
      P->depth--;
      return node;
    }
    return fail(P, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_value(parser *P) {
  skip_ws(P);
  if (P->p >= P->end)
    return fail(P, "unexpected end");
  char c = *P->p;
  if (c == '{' || c == '[')
    return parse_container(P, c == '{');
  if (c == '"') {
    int node = new_node(P, RT_JSON_STRING);
    if (node < 0)
      return -1;
    const char *s = parse_string(P);
    if (!s)
      return -1;
    P->j->nodes[node].str = s;
    return node;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    int node = new_node(P, RT_JSON_NUMBER);
    return node < 0 || parse_number(P, node) < 0 ? -1 : node;
  }
  static const struct { const char *word; rt_json_kind kind; bool value; } words[] = {
      {"true", RT_JSON_BOOL, true}, {"false", RT_JSON_BOOL, false}, {"null", RT_JSON_NULL, false}};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i].word);
    if ((size_t)(P->end - P->p) >= n && memcmp(P->p, words[i].word, n) == 0) {
      P->p += n;
      int node = new_node(P, words[i].kind);
      if (node >= 0)
        P->j->nodes[node].boolean = words[i].value;
      return node;
    }
  }
  return fail(P, "unexpected character");
}

int rt_json_parse(rt_json *j, const char *text, size_t len, char *err, size_t errsize) {
  memset(j, 0, sizeof *j);
  err[0] = 0;
  j->strings = malloc(len + 1);
  if (!j->strings) {
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  parser P = {j, text, text + len, text, j->strings, err, errsize, 0};
  int root = parse_value(&P);
  if (root >= 0) {
    skip_ws(&P);
    if (P.p != P.end)
      root = fail(&P, "junk after the JSON value");
  }
  if (root < 0) {
    rt_json_free(j);
    return -1;
  }
  return 0;
}

void rt_json_free(rt_json *j) {
  free(j->nodes);
  free(j->strings);
  memset(j, 0, sizeof *j);
}

int rt_json_get(const rt_json *j, int obj, const char *key) {
  if (obj < 0 || j->nodes[obj].kind != RT_JSON_OBJECT)
    return -1;
  for (int c = j->nodes[obj].first; c >= 0; c = j->nodes[c].next)
    if (strcmp(j->nodes[c].key, key) == 0)
      return c;
  return -1;
}
