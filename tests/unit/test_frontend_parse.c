// test_frontend_parse.c — lexer and parser: statements, tuples, keyword arguments,
// strings, numbers, line joining, comments, locations; many compilations per process.
#include "nnc.h"
#include "frontend_util.h"

static int count_stmts(Stmt *s) {
  int n = 0;
  for (; s; s = s->next) n++;
  return n;
}

// The value of the n-th statement (0-based).
static Stmt *nth(Stmt *s, int n) {
  while (n-- > 0 && s) s = s->next;
  cr_assert_not_null(s);
  return s;
}

Test(parse, statement_kinds) {
  Stmt *s = parse("import numpy as np\nfrom tensorflow.keras.layers import Dense, Conv2D\n"
                  "x = 1\na, b = 1, 2\nprint(x)\n");
  cr_assert_eq(count_stmts(s), 5);
  cr_assert_eq(nth(s, 0)->kind, S_IMPORT);
  cr_assert_eq(nth(s, 1)->kind, S_IMPORT);
  cr_assert_str_eq(ast_dotted(nth(s, 1)->target), "tensorflow.keras.layers");
  cr_assert_eq(nth(s, 1)->value->args.n, 2);
  cr_assert_eq(nth(s, 2)->kind, S_ASSIGN);
  cr_assert_eq(nth(s, 3)->target->kind, E_TUPLE);
  cr_assert_eq(nth(s, 3)->target->args.n, 2);
  cr_assert_eq(nth(s, 3)->value->kind, E_TUPLE);
  cr_assert_eq(nth(s, 4)->kind, S_EXPR);
  cr_assert_eq(nth(s, 4)->value->kind, E_CALL);
}

Test(parse, import_alias_and_parenthesized_names) {
  Stmt *s = parse("import tensorflow as tf\nfrom keras.layers import (Dense,\n    Flatten,)\n");
  cr_assert_eq(count_stmts(s), 2);
  cr_assert_str_eq(nth(s, 0)->value->args.items[0]->kwname, "tf");
  cr_assert_eq(nth(s, 1)->value->args.n, 2);
}

Test(parse, tuples_and_parentheses) {
  Stmt *s = parse("a = (1,)\nb = (1)\nc = ()\nd = [1, 2,]\ne = 1,\n");
  cr_assert_eq(nth(s, 0)->value->kind, E_TUPLE);
  cr_assert_eq(nth(s, 0)->value->args.n, 1);
  cr_assert_eq(nth(s, 1)->value->kind, E_INT, "(1) is just 1");
  cr_assert_eq(nth(s, 2)->value->kind, E_TUPLE);
  cr_assert_eq(nth(s, 2)->value->args.n, 0);
  cr_assert_eq(nth(s, 3)->value->kind, E_LIST);
  cr_assert_eq(nth(s, 3)->value->args.n, 2);
  cr_assert_eq(nth(s, 4)->value->kind, E_TUPLE);
}

Test(parse, nested_tuple_target) {
  Stmt *s = parse("(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n");
  Expr *t = s->target;
  cr_assert_eq(t->kind, E_TUPLE);
  cr_assert_eq(t->args.n, 2);
  cr_assert_eq(t->args.items[1]->kind, E_TUPLE);
  cr_assert_str_eq(t->args.items[1]->args.items[0]->name, "x_test");
}

Test(parse, keyword_arguments) {
  Stmt *s = parse("f(1, 'two', a=3, b=x.y)\n");
  Expr *c = s->value;
  cr_assert_eq(c->kind, E_CALL);
  cr_assert_eq(c->args.n, 2);
  cr_assert_eq(c->kwargs.n, 2);
  cr_assert_str_eq(c->kwargs.items[0]->kwname, "a");
  cr_assert_eq(c->kwargs.items[0]->ival, 3);
  cr_assert_str_eq(c->kwargs.items[1]->kwname, "b");
  cr_assert_eq(c->kwargs.items[1]->kind, E_ATTR);
}

Test(parse, positional_after_keyword_is_an_error) {
  cr_assert_null(parse("f(a=1, 2)\n"));
  cr_assert_str_eq(last_error(), "1:8: error: positional argument follows keyword argument");
}

Test(parse, operators_and_precedence) {
  Stmt *s = parse("x = 1 + 2 * 3 ** 2 / -4\n");
  Expr *e = s->value;
  cr_assert_eq(e->kind, E_BINARY);
  cr_assert_eq(e->op, '+');
  cr_assert_eq(e->rhs->op, '/');
  cr_assert_eq(e->rhs->lhs->op, '*');
  cr_assert_eq(e->rhs->lhs->rhs->op, 'p');
  cr_assert_eq(e->rhs->rhs->kind, E_UNARY);
}

Test(parse, string_escapes) {
  Stmt *s = parse("a = 'x\\ty\\n'\nb = \"it's \\\"q\\\" \\\\\"\nc = r'\\n'\nd = '\\d'\n");
  cr_assert_str_eq(nth(s, 0)->value->name, "x\ty\n");
  cr_assert_str_eq(nth(s, 1)->value->name, "it's \"q\" \\");
  cr_assert_str_eq(nth(s, 2)->value->name, "\\n", "raw strings keep backslashes");
  cr_assert_str_eq(nth(s, 3)->value->name, "\\d", "unknown escapes stay as written, as in Python");
}

Test(parse, triple_quoted_and_adjacent_strings) {
  Stmt *s = parse("\"\"\"Doc\nstring with ' and \"\" inside\"\"\"\nx = 'ab' \"cd\" '''ef'''\ny = ('multi'\n     'line')\n");
  cr_assert_eq(count_stmts(s), 3);
  cr_assert_str_eq(nth(s, 0)->value->name, "Doc\nstring with ' and \"\" inside");
  cr_assert_str_eq(nth(s, 1)->value->name, "abcdef");
  cr_assert_str_eq(nth(s, 2)->value->name, "multiline");
  cr_assert_eq(nth(s, 2)->loc.line, 4);
}

Test(parse, numbers) {
  Stmt *s = parse("a = 1_000\nb = 0x10\nc = 1e-3\nd = .5\ne = 5.\nf = 0b101\ng = 99999999999999999999\n");
  cr_assert_eq(nth(s, 0)->value->ival, 1000);
  cr_assert_eq(nth(s, 1)->value->ival, 16);
  cr_assert_float_eq(nth(s, 2)->value->fval, 1e-3, 1e-15);
  cr_assert_eq(nth(s, 2)->value->kind, E_FLOAT);
  cr_assert_float_eq(nth(s, 3)->value->fval, 0.5, 1e-15);
  cr_assert_eq(nth(s, 4)->value->kind, E_FLOAT);
  cr_assert_eq(nth(s, 5)->value->ival, 5);
  cr_assert(nth(s, 6)->value->overflow, "a literal beyond int64 is flagged, not wrapped");
}

Test(parse, line_joining_inside_brackets_and_with_backslash) {
  Stmt *s = parse("x = [1,\n     2,\n\n     3]\ny = 1 + \\\n    2\nz = 3\n");
  cr_assert_eq(count_stmts(s), 3);
  cr_assert_eq(nth(s, 0)->value->args.n, 3);
  cr_assert_eq(nth(s, 1)->value->kind, E_BINARY);
  cr_assert_eq(nth(s, 2)->loc.line, 7);
}

Test(parse, comments_blank_lines_semicolons_bom) {
  Stmt *s = parse("\xEF\xBB\xBF# header\n\nx = 1  # trailing\n   # indented comment\ny = 2;\n");
  cr_assert_eq(count_stmts(s), 2);
  cr_assert_eq(nth(s, 1)->loc.line, 5);
}

Test(parse, no_newline_at_end_of_file) {
  Stmt *s = parse("x = 1\ny = 2");
  cr_assert_eq(count_stmts(s), 2);
}

Test(parse, locations_are_line_and_column) {
  Stmt *s = parse("x = 1\n\nmodel = Dense(10,\n              activation='relu')\n");
  Expr *call = nth(s, 1)->value;
  cr_assert_eq(call->loc.line, 3);
  cr_assert_eq(call->loc.col, 9);
  Expr *act = call->kwargs.items[0];
  cr_assert_eq(act->loc.line, 4);
  cr_assert_eq(act->loc.col, 26, "a keyword argument points at its value");
}

Test(parse, syntax_errors_name_the_place) {
  cr_assert_null(parse("x = (1, 2\ny = 3\n"));
  cr_assert(strstr(last_error(), "1:5: error: '(' was never closed") || strstr(last_error(), "2:1:"), "%s", last_error());
  cr_assert_null(parse("x = 3 * / 4\n"));
  cr_assert_str_eq(last_error(), "1:9: error: unexpected '/', expected an expression");
  cr_assert_null(parse("for i in x:\n  pass\n"));
  cr_assert(strstr(last_error(), "1:1: error: 'for' is not supported"), "%s", last_error());
  cr_assert_null(parse("  x = 1\n"));
  cr_assert(strstr(last_error(), "1:3: error: unexpected indent"), "%s", last_error());
}

Test(parse, hostile_bytes) {
  cr_assert_null(compile_with("x = 1\0\n", 7, NULL));
  cr_assert_str_eq(last_error(), "1:6: error: NUL byte in source");
  cr_assert_null(parse("x = '\xff'\n"));
  cr_assert_str_eq(last_error(), "1:6: error: invalid UTF-8 byte 0xff (a .nn file must be UTF-8)");
  cr_assert_null(parse("x = '''never closed\n\n"));
  cr_assert_str_eq(last_error(), "1:5: error: unterminated string literal");
  cr_assert_null(parse(""));
  cr_assert(strstr(last_error(), "1:1: error: the file has no statements"), "%s", last_error());
}

Test(parse, nesting_is_bounded) {
  char buf[2 * 300 + 16];
  int n = sprintf(buf, "x = ");
  for (int i = 0; i < 300; i++) buf[n++] = '[';
  buf[n++] = '1';
  for (int i = 0; i < 300; i++) buf[n++] = ']';
  buf[n++] = '\n', buf[n] = 0;
  cr_assert_null(parse(buf));
  cr_assert_str_eq(last_error(), "1:205: error: brackets nested more than 200 deep");
}

// Deep trees without brackets: left-recursive chains must not overflow sema's stack.
Test(parse, long_chains_are_refused_not_recursed) {
  static const char *const unit[] = {".b", "+1", "()", "[0]"};
  for (int k = 0; k < 4; k++) {
    size_t cap = 200000 * 4 + 16;
    char *buf = malloc(cap);
    int n = sprintf(buf, "x = a");
    for (int i = 0; i < 200000; i++) n += sprintf(buf + n, "%s", unit[k]);
    sprintf(buf + n, "\n");
    cr_assert_null(compile(buf));
    cr_assert(strstr(last_error(), "nested more than 500 levels deep"), "%s: %s", unit[k], last_error());
    free(buf);
  }
}

// diag and sema keep static state: a process must be able to compile many files.
Test(parse, many_compilations_in_one_process) {
  const char *good = HEADER "model = keras.Sequential([Dense(4, input_shape=(3,)), Dense(2)])\n";
  for (int i = 0; i < 200; i++) {
    Program *p = compile(i % 3 == 2 ? "x = $\n" : good);
    if (i % 3 == 2) {
      cr_assert_null(p);
      cr_assert_str_eq(last_error(), "1:5: error: unexpected character '$'");
      continue;
    }
    cr_assert_not_null(p, "run %d: %s", i, last_error());
    cr_assert_eq(p->total_params, 3 * 4 + 4 + 4 * 2 + 2);
    cr_assert_str_eq(p->layers[1].name, "dense", "automatic names restart per compilation");
    cr_assert_str_eq(p->layers[2].name, "dense_1");
    if (i % 10 == 0) arena_free_all();
  }
}
