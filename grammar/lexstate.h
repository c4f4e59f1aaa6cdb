// lexstate.h — state shared by the scanner and the parser driver (parse.c).
#ifndef LEXSTATE_H
#define LEXSTATE_H

enum { LEX_MAX_DEPTH = 200 };  // bracket nesting; deeper input is refused, not recursed into
// Every token becomes an AST node: bound the total so a 16 MiB list literal cannot
// take gigabytes. A model script has thousands; big data belongs in files.
enum { LEX_MAX_TOKENS = 1 << 21 };

struct LexState {
  int line, col;          // position of the next character
  int depth;              // open brackets
  Loc open_at[LEX_MAX_DEPTH + 1];  // where each open bracket is, for "'(' was never closed"
  char open_ch[LEX_MAX_DEPTH + 1];
  int line_has_token;     // a NEWLINE token is due at the end of this line
  int eof_newline;        // the synthetic NEWLINE before EOF was returned
  int fatal;              // stop parsing (NUL byte, runaway nesting)
  int errors;
  int tokens;             // tokens so far, bounded by LEX_MAX_TOKENS
  int last_tok, prev_tok; // the last two tokens and where they end, for hints
  Loc last_at, prev_at;
  int stmt_indent_checked;
  int no_indent_check;    // parsing an f-string field, which starts anywhere
  const char *keyword;    // text of the last Python keyword seen, for the message
  const char *op_bad;     // text of the last operator .nn does not have, for the message
  char punct;             // the last one-character operator, for "unexpected ':'"
  Stmt *first, *last;     // statements, in order
};

// Every token marks the line as having one; its location is set by lex_advance.
#define TOK(t) do { if (!lex_token(yyextra, yylloc, (t))) return 0; return (t); } while (0)
int lex_token(struct LexState *st, struct YYLTYPE *loc, int tok);  // 0: stop (too many tokens)

union YYSTYPE;
struct YYLTYPE;
void lex_advance(struct LexState *st, struct YYLTYPE *loc, const char *text, int len);
void lex_error(struct LexState *st, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int lex_string(struct LexState *st, void *scanner, union YYSTYPE *val, struct YYLTYPE *loc,
               const char *prefix, char quote, int triple);
const char *lex_fprefix(const char *text);
void lex_check_utf8(struct LexState *st, Loc loc, const char *text, int len);
const char *lex_printable(char c);

#endif
