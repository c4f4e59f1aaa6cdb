/* parser.y — syntax of the .nn language. Pure, reentrant, with locations.
 * Every action is one call into an ast_*() builder: no logic lives here. */
%require "3.7"
%define api.pure full
%locations
%define parse.error custom
%expect 0
%lex-param {void *scanner}
%parse-param {void *scanner} {struct LexState *st}

%code requires {
#include "nnc.h"
struct LexState;
}

%code {
#include <string.h>
#include "lexstate.h"
int yylex(YYSTYPE *lval, YYLTYPE *lloc, void *scanner);
static Loc L(YYLTYPE l) { return (Loc){l.first_line, l.first_column, l.last_line == l.first_line ? l.last_column : l.first_column}; }
static void append_stmt(struct LexState *st, Stmt *s);
static void yyerror(YYLTYPE *loc, void *scanner, struct LexState *st, const char *msg);
static ExprList one(Expr *e) { ExprList l = {0}; exprlist_push(&l, e); return l; }
static ExprList push(ExprList l, Expr *e) { exprlist_push(&l, e); return l; }
static const ExprList empty_list;
}

%union {
  const char *str;
  Expr *expr;
  ExprList list;
  Stmt *stmt;
}

%token NEWLINE "end of line"
%token IMPORT "'import'" FROM "'from'" AS "'as'"
%token NONE "'None'" TRUE "'True'" FALSE "'False'"
%token <str> KEYWORD "keyword"
%token <str> NAME "name" INT "integer" FLOAT "number" STRING "string" FSTRING "f-string"
%token <str> AUGASSIGN "augmented assignment" OP_BAD "operator"
%token POW "'**'"
%token INT_BAD "invalid number" STRING_BAD "invalid string" NAME_BAD "invalid name" CHAR_BAD "invalid character"

%type <expr> expr sum term factor power primary atom arg testlist dotted import_item subscripts subscript opt_expr
%type <list> args arglist exprs import_list import_names subs
%type <list> strings

%start program

%%

program: %empty
       | program stmt
       ;

stmt: NEWLINE
    | simples NEWLINE
    | simples ';' NEWLINE
    | error NEWLINE          { yyerrok; }
    ;

/* `a = 1; b = 2`: several statements on one line, as in Python. */
simples: simple
       | simples ';' simple
       ;

simple: testlist                        { append_stmt(st, ast_stmt(L(@1), S_EXPR, NULL, $1)); }
      | testlist '=' testlist           { append_stmt(st, ast_stmt(L(@1), S_ASSIGN, $1, $3)); }
      | testlist AUGASSIGN testlist     { append_stmt(st, ast_augassign(L(@1), L(@2), $2[0], $1, $3)); }
      | IMPORT import_list              { append_stmt(st, ast_stmt(L(@1), S_IMPORT, NULL, ast_tuple(L(@1), $2))); }
      | FROM dotted IMPORT import_names { append_stmt(st, ast_stmt(L(@1), S_IMPORT, $2, ast_tuple(L(@1), $4))); }
      ;

import_list: import_item                 { $$ = one($1); }
           | import_list ',' import_item { $$ = push($1, $3); }
           ;
import_item: dotted                      { $$ = $1; }
           | dotted AS NAME              { $$ = ast_kwarg(L(@3), $3, $1); }
           ;
import_names: import_list                { $$ = $1; }
            | '(' import_list ')'        { $$ = $2; }
            | '(' import_list ',' ')'    { $$ = $2; }
            | '*'                        { $$ = one(ast_name(L(@1), "*")); }
            ;
dotted: NAME                             { $$ = ast_name(L(@1), $1); }
      | dotted '.' NAME                  { $$ = ast_attr(loc_span(L(@1), L(@3)), $1, $3); }
      ;

/* A bare `a, b` is a tuple, as in Python (`x, y = data`). */
testlist: expr                 { $$ = $1; }
        | exprs ','            { $$ = ast_tuple(L(@1), $1); }
        | exprs ',' expr       { $$ = ast_tuple(L(@1), push($1, $3)); }
        ;
exprs: expr                    { $$ = one($1); }
     | exprs ',' expr          { $$ = push($1, $3); }
     ;

expr: sum ;

sum: term
   | sum '+' term              { $$ = ast_binary(loc_span(L(@1), L(@3)), '+', $1, $3); }
   | sum '-' term              { $$ = ast_binary(loc_span(L(@1), L(@3)), '-', $1, $3); }
   ;
term: factor
    | term '*' factor          { $$ = ast_binary(loc_span(L(@1), L(@3)), '*', $1, $3); }
    | term '/' factor          { $$ = ast_binary(loc_span(L(@1), L(@3)), '/', $1, $3); }
    | term '%' factor          { $$ = ast_binary(loc_span(L(@1), L(@3)), '%', $1, $3); }
    ;
factor: power
      | '-' factor             { $$ = ast_unary(loc_span(L(@1), L(@2)), '-', $2); }
      | '+' factor             { $$ = $2; }
      ;
power: primary
     | primary POW factor      { $$ = ast_binary(loc_span(L(@1), L(@3)), 'p', $1, $3); }
     ;

primary: atom
       | primary '.' NAME               { $$ = ast_attr(loc_span(L(@1), L(@3)), $1, $3); }
       | primary '(' args ')'           { $$ = ast_call(loc_span(L(@1), L(@4)), $1, $3); }
       | primary '[' subscripts ']'     { $$ = ast_index(loc_span(L(@1), L(@4)), $1, $3); }
       ;

/* x[0], x[:5], x[100:], dataset[:, 0:8]: a subscript list is a tuple, as in Python. */
subscripts: subscript          { $$ = $1; }
          | subs ','           { $$ = ast_tuple(L(@1), $1); }
          | subs ',' subscript { $$ = ast_tuple(L(@1), push($1, $3)); }
          ;
subs: subscript                { $$ = one($1); }
    | subs ',' subscript       { $$ = push($1, $3); }
    ;
subscript: expr                                 { $$ = $1; }
         | opt_expr ':' opt_expr                { $$ = ast_slice(L(@2), $1, $3, NULL); }
         | opt_expr ':' opt_expr ':' opt_expr   { $$ = ast_slice(L(@2), $1, $3, $5); }
         ;
opt_expr: %empty               { $$ = NULL; }
        | expr                 { $$ = $1; }
        ;

atom: NAME                     { $$ = ast_name(L(@1), $1); }
    | INT                      { $$ = ast_int(L(@1), $1); }
    | FLOAT                    { $$ = ast_float(L(@1), $1); }
    | strings                  { $$ = ast_strings(L(@1), $1); }
    | NONE                     { $$ = ast_const(L(@1), E_NONE); }
    | TRUE                     { $$ = ast_const(L(@1), E_TRUE); }
    | FALSE                    { $$ = ast_const(L(@1), E_FALSE); }
    | '(' ')'                  { $$ = ast_tuple(loc_span(L(@1), L(@2)), empty_list); }
    | '(' expr ')'             { $$ = $2; }
    | '(' exprs ',' ')'        { $$ = ast_tuple(loc_span(L(@1), L(@4)), $2); }
    | '(' exprs ',' expr ')'   { $$ = ast_tuple(loc_span(L(@1), L(@5)), push($2, $4)); }
    | '[' ']'                  { $$ = ast_list(loc_span(L(@1), L(@2)), empty_list); }
    | '[' exprs ']'            { $$ = ast_list(loc_span(L(@1), L(@3)), $2); }
    | '[' exprs ',' ']'        { $$ = ast_list(loc_span(L(@1), L(@4)), $2); }
    ;

/* Adjacent string literals concatenate, as in Python. */
strings: STRING                { $$ = one(ast_string(L(@1), $1)); }
       | FSTRING               { $$ = one(ast_fstring(L(@1), $1)); }
       | strings STRING        { $$ = push($1, ast_string(L(@2), $2)); }
       | strings FSTRING       { $$ = push($1, ast_fstring(L(@2), $2)); }
       ;

args: %empty                   { $$ = empty_list; }
    | arglist                  { $$ = $1; }
    | arglist ','              { $$ = $1; }
    ;
arglist: arg                   { $$ = one($1); }
       | arglist ',' arg       { $$ = push($1, $3); }
       ;
arg: expr                      { $$ = $1; }
   | NAME '=' expr             { $$ = ast_kwarg(L(@1), $1, $3); }
   ;


%%

/* Only bison's own failures arrive here ("memory exhausted"); syntax errors go
 * through yyreport_syntax_error. */
static void yyerror(YYLTYPE *loc, void *scanner, struct LexState *st, const char *msg) {
  (void)scanner;
  if (!strcmp(msg, "memory exhausted"))  // bison's stack limit: `- - - … 1`, `1 ** 1 ** …`
    msg = "expression nested too deeply";
  diag_error(L(*loc), "%s", msg);
  st->errors++;
}

static void append_stmt(struct LexState *st, Stmt *s) {
  if (st->last) st->last->next = s;
  else st->first = s;
  st->last = s;
}

/* "expected X or Y" from the parser's state; a hint for unsupported Python. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, struct LexState *st) {
  (void)scanner;
  YYLTYPE *l = yypcontext_location(ctx);
  Loc loc = L(*l);
  yysymbol_kind_t tok = yypcontext_token(ctx);
  /* Lexical errors were reported by the lexer already. */
  if (tok == YYSYMBOL_INT_BAD || tok == YYSYMBOL_STRING_BAD || tok == YYSYMBOL_NAME_BAD || tok == YYSYMBOL_CHAR_BAD)
    return 0;
  if (tok == YYSYMBOL_OP_BAD) {
    diag_error(loc, "operator '%s' is not supported: a .nn file computes shapes and settings, not comparisons or integer division", st->op_bad ? st->op_bad : "?");
    st->errors++;
    return 0;
  }
  if (tok == YYSYMBOL_KEYWORD) {
    diag_error(loc, "'%s' is not supported: a .nn file is a flat Keras script, with no control flow, functions or classes",
               st->keyword ? st->keyword : "keyword");
    st->errors++;
    return 0;
  }
  yysymbol_kind_t expected[YYNTOKENS];
  int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
  bool wants_expr = false, wants_close = false;
  for (int i = 0; i < n; i++) {
    wants_expr |= expected[i] == YYSYMBOL_INT;
    const char *name = yysymbol_name(expected[i]);
    wants_close |= !strcmp(name, "')'") || !strcmp(name, "']'") || !strcmp(name, "','");
  }
  bool operand = tok == YYSYMBOL_NAME || tok == YYSYMBOL_INT || tok == YYSYMBOL_FLOAT || tok == YYSYMBOL_STRING;
  char msg[512];
  int len;
  if (tok == YYSYMBOL_YYUNDEF && st->punct) {
    // A character Python has and the .nn language does not: say which, and why.
    const char *why = st->punct == ':' ? " (dicts, lambdas and blocks are not supported; slices such as x[:100] are)"
                    : st->punct == '{' ? " (dicts and sets are not supported)"
                                       : " (this operator is not supported)";
    len = snprintf(msg, sizeof msg, "unexpected '%c'%s", st->punct, why);
    diag_error(loc, "%s", msg);
    st->errors++;
    return 0;
  }
  if (!strcmp(yysymbol_name(tok), "':'")) {
    diag_error(loc, "unexpected ':' (dicts, lambdas and blocks are not supported; slices such as x[:100] are)");
    st->errors++;
    return 0;
  }
  len = snprintf(msg, sizeof msg, "unexpected %s", tok == YYSYMBOL_YYEOF ? "end of file" : yysymbol_name(tok));
  if (wants_expr) {
    len += snprintf(msg + len, sizeof msg - len, ", expected an expression");
  } else if (n > 0 && n <= 5) {
    len += snprintf(msg + len, sizeof msg - len, ", expected ");
    for (int i = 0; i < n && len < (int)sizeof msg; i++)
      len += snprintf(msg + len, sizeof msg - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", yysymbol_name(expected[i]));
  }
  // `'adam, loss='mse'`: a name glued to the end of a string is a misplaced quote;
  // `Dense(10 activation='relu')`: two operands in a row inside brackets.
  bool after_string = st->prev_tok == STRING && st->prev_at.line == loc.line && st->prev_at.end_col + 1 == loc.col;
  if (operand && after_string && len < (int)sizeof msg)
    snprintf(msg + len, sizeof msg - len, " (is a quote missing or misplaced?)");
  else if (operand && wants_close && len < (int)sizeof msg)
    snprintf(msg + len, sizeof msg - len, " (is a comma missing?)");
  diag_error(loc, "%s", msg);
  st->errors++;
  return 0;
}
