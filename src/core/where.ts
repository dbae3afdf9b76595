/**
 * The `where` filter of events pipelines (docs/contract.md#the-where-filter): the part of the vendor's
 * segmentation expressions that selects events by their properties, compiled once into a predicate.
 *
 *   expression := or
 *   or         := and ("or" and)*
 *   and        := unary ("and" unary)*
 *   unary      := "not" unary | comparison
 *   comparison := primary [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") primary]
 *   primary    := properties["name"] | defined(expression) | "(" expression ")"
 *               | "[" [expression ("," expression)*] "]" | string | number | true | false | null
 *
 * Keywords are case-insensitive; strings take double quotes and JSON escapes. Values are never coerced:
 * `==` holds for equal JSON values of the same type (a missing property equals nothing); `<`, `<=`, `>`,
 * `>=` compare two numbers or two strings and are false otherwise; `a in b` holds when list `b` has an
 * element equal to `a`, or when `a` and `b` are strings and `a` is a substring of `b`; `!=` is the
 * negation of `==`. `and`, `or`, `not` and the whole expression read a value as false when it is false,
 * null, missing, 0, "", [] or {}, and as true otherwise.
 */
import { ConfigError } from './errors.js';
import { canonicalJson, isPlainObject, ownField } from './json-line.js';

/** An event's properties, as parsed from its line. */
export type Properties = Readonly<Record<string, unknown>>;
/** True when an event's properties match the filter. */
export type WherePredicate = (properties: Properties) => boolean;

/** Longest expression accepted; a filter is a few conditions, not a program. */
export const MAX_WHERE_LENGTH = 4096;
/** Deepest nesting accepted, so a pathological config cannot exhaust the stack. */
const MAX_DEPTH = 64;

/** Compiles a `where` expression, or throws a `ConfigError` naming the character where it goes wrong. */
export function compileWhere(expression: string): WherePredicate {
  if (expression.length > MAX_WHERE_LENGTH)
    throw new ConfigError(
      `is ${expression.length} characters long; at most ${MAX_WHERE_LENGTH} are accepted`,
    );
  const parser = new Parser(tokenize(expression));
  const node = parser.expression(0);
  parser.expectEnd();
  return (properties) => truthy(node(properties));
}

type Evaluate = (properties: Properties) => unknown;

type Token =
  | { readonly kind: 'string' | 'number'; readonly value: string | number; readonly at: number }
  | { readonly kind: 'word' | 'symbol'; readonly value: string; readonly at: number }
  | { readonly kind: 'end'; readonly at: number };

const WHITESPACE = /\s+/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings exclude raw control characters.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const SYMBOL = /==|!=|<=|>=|<|>|\(|\)|\[|\]|,|-/y;
/** Operators of other languages, with what to write instead. */
const FOREIGN: readonly [RegExp, string][] = [
  [/&&/y, 'use "and" to join conditions'],
  [/\|\|/y, 'use "or" to join alternatives'],
  [/=/y, 'use "==" to compare'],
  [/!/y, 'use "not" to negate'],
  [/'/y, 'strings take double quotes'],
  [/\./y, 'write a property as properties["name"], and a number with a digit before its point'],
  [/[+*/%]/y, 'arithmetic is not supported by the where filter'],
];

/** The tokens of the grammar, tried in this order at each position. */
const LEXEMES: readonly [Exclude<Token['kind'], 'end'>, RegExp][] = [
  ['string', STRING],
  ['number', NUMBER],
  ['word', WORD],
  ['symbol', SYMBOL],
];

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const space = matchAt(WHITESPACE, text, at);
    if (space !== undefined) {
      at += space.length;
      continue;
    }
    const [token, length] = tokenAt(text, at);
    tokens.push(token);
    at += length;
  }
  tokens.push({ kind: 'end', at });
  return tokens;
}

/** The token at `at` and its length in characters, or a `ConfigError` saying what to write instead. */
function tokenAt(text: string, at: number): [Token, number] {
  for (const [kind, pattern] of LEXEMES) {
    const lexeme = matchAt(pattern, text, at);
    if (lexeme === undefined) continue;
    if (kind === 'string') return [{ kind, value: JSON.parse(lexeme) as string, at }, lexeme.length];
    if (kind === 'number') return [{ kind, value: Number(lexeme), at }, lexeme.length];
    return [{ kind, value: lexeme, at }, lexeme.length];
  }
  if (text[at] === '"')
    throw syntax(at, 'this string is not closed, or has an invalid escape or control character');
  const hint = FOREIGN.find(([pattern]) => matchAt(pattern, text, at) !== undefined)?.[1];
  throw syntax(at, `unexpected ${JSON.stringify(text[at])}${hint === undefined ? '' : `: ${hint}`}`);
}

function matchAt(pattern: RegExp, text: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(text)?.[0];
}

const COMPARISONS: Readonly<Record<string, (a: unknown, b: unknown) => boolean>> = {
  '==': equal,
  '!=': (a, b) => !equal(a, b),
  '<': (a, b) => ordered(a, b, (x, y) => x < y),
  '<=': (a, b) => ordered(a, b, (x, y) => x <= y),
  '>': (a, b) => ordered(a, b, (x, y) => x > y),
  '>=': (a, b) => ordered(a, b, (x, y) => x >= y),
  in: contains,
};

const OPERATOR_WORDS = new Set(['and', 'or', 'not', 'in']);
const UNSUPPORTED_FUNCTIONS = new Set(['floor', 'round', 'ceil', 'boolean', 'number', 'string', 'datetime']);

class Parser {
  private next = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  expression(depth: number): Evaluate {
    this.checkDepth(depth);
    return this.or(depth);
  }

  expectEnd(): void {
    const token = this.peek();
    if (token.kind !== 'end')
      throw syntax(token.at, `expected the end of the expression, found ${describe(token)}`);
  }

  private or(depth: number): Evaluate {
    let left = this.and(depth);
    while (this.takeKeyword('or')) {
      const [a, b] = [left, this.and(depth)];
      left = (p) => truthy(a(p)) || truthy(b(p));
    }
    return left;
  }

  private and(depth: number): Evaluate {
    let left = this.unary(depth);
    while (this.takeKeyword('and')) {
      const [a, b] = [left, this.unary(depth)];
      left = (p) => truthy(a(p)) && truthy(b(p));
    }
    return left;
  }

  private unary(depth: number): Evaluate {
    if (this.takeKeyword('not')) {
      this.checkDepth(depth + 1);
      const operand = this.unary(depth + 1);
      return (p) => !truthy(operand(p));
    }
    return this.comparison(depth);
  }

  private comparison(depth: number): Evaluate {
    const left = this.primary(depth);
    const operator = this.comparisonOperator();
    if (operator === undefined) return left;
    const right = this.primary(depth);
    const again = this.peek();
    if (this.comparisonOperator() !== undefined)
      throw syntax(again.at, 'comparisons do not chain: join them with "and"');
    const compare = COMPARISONS[operator]!;
    return (p) => compare(left(p), right(p));
  }

  private comparisonOperator(): string | undefined {
    const token = this.peek();
    const operator =
      token.kind === 'symbol' || token.kind === 'word' ? String(token.value).toLowerCase() : undefined;
    if (operator === undefined || !Object.hasOwn(COMPARISONS, operator)) return undefined;
    if (token.kind === 'word' && operator !== 'in') return undefined;
    this.next += 1;
    return operator;
  }

  private primary(depth: number): Evaluate {
    const token = this.take();
    if (token.kind === 'string' || token.kind === 'number') return constant(token.value);
    if (token.kind === 'symbol') {
      if (token.value === '-') {
        const number = this.take();
        if (number.kind !== 'number')
          throw syntax(number.at, 'a "-" must be followed by a number: arithmetic is not supported');
        return constant(-number.value);
      }
      if (token.value === '(') {
        const inner = this.expression(depth + 1);
        this.expectSymbol(')', `to close the "(" at character ${token.at + 1}`);
        return inner;
      }
      if (token.value === '[') return this.list(token.at, depth + 1);
    }
    if (token.kind === 'word') {
      const word = token.value.toLowerCase();
      if (word === 'true') return constant(true);
      if (word === 'false') return constant(false);
      if (word === 'null') return constant(null);
      if (word === 'properties') return this.property();
      if (word === 'defined') {
        this.expectSymbol('(', 'after "defined"');
        const operand = this.expression(depth + 1);
        this.expectSymbol(')', `to close the "defined(" at character ${token.at + 1}`);
        return (p) => operand(p) !== undefined;
      }
      throw syntax(token.at, unknownWord(token.value));
    }
    throw syntax(token.at, `expected a value, found ${describe(token)}`);
  }

  private property(): Evaluate {
    this.expectSymbol('[', 'after "properties" (a property is written properties["name"])');
    const name = this.take();
    if (name.kind !== 'string')
      throw syntax(name.at, `a property name is a string in double quotes, found ${describe(name)}`);
    this.expectSymbol(']', 'after the property name');
    const key = name.value as string;
    return (p) => ownField(p, key);
  }

  private list(openedAt: number, depth: number): Evaluate {
    const elements: Evaluate[] = [];
    if (!this.takeSymbol(']')) {
      do {
        elements.push(this.expression(depth));
      } while (this.takeSymbol(','));
      this.expectSymbol(']', `to close the "[" at character ${openedAt + 1}`);
    }
    return (p) => elements.map((element) => element(p));
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_DEPTH) throw syntax(this.peek().at, `nested more than ${MAX_DEPTH} levels deep`);
  }

  private peek(): Token {
    return this.tokens[this.next]!;
  }

  private take(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.next += 1;
    return token;
  }

  private takeKeyword(keyword: string): boolean {
    const token = this.peek();
    if (token.kind !== 'word' || token.value.toLowerCase() !== keyword) return false;
    this.next += 1;
    return true;
  }

  private takeSymbol(symbol: string): boolean {
    const token = this.peek();
    if (token.kind !== 'symbol' || token.value !== symbol) return false;
    this.next += 1;
    return true;
  }

  private expectSymbol(symbol: string, context: string): void {
    const token = this.peek();
    if (!this.takeSymbol(symbol))
      throw syntax(token.at, `expected "${symbol}" ${context}, found ${describe(token)}`);
  }
}

function constant(value: unknown): Evaluate {
  return () => value;
}

function unknownWord(word: string): string {
  const lower = word.toLowerCase();
  if (OPERATOR_WORDS.has(lower)) return `expected a value, found ${JSON.stringify(word)}`;
  if (lower === 'user' || lower === 'event')
    return `${word}[...] is not supported: the where filter reads event properties, written properties["name"]`;
  if (UNSUPPORTED_FUNCTIONS.has(lower))
    return `the function ${word}() is not supported by the where filter (defined() is)`;
  return `unknown name ${JSON.stringify(word)}: write a property as properties["${word}"] and a string in double quotes`;
}

function describe(token: Token): string {
  if (token.kind === 'end') return 'the end of the expression';
  return JSON.stringify(String(token.value));
}

function syntax(at: number, message: string): ConfigError {
  return new ConfigError(`at character ${at + 1}: ${message}`);
}

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (typeof value === 'number') return !Number.isNaN(value);
  if (Array.isArray(value)) return value.length > 0;
  if (isPlainObject(value)) return Object.keys(value).length > 0;
  return true;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function ordered(
  a: unknown,
  b: unknown,
  compare: <T extends number | string>(x: T, y: T) => boolean,
): boolean {
  if (typeof a === 'number' && typeof b === 'number') return compare(a, b);
  if (typeof a === 'string' && typeof b === 'string') return compare(a, b);
  return false;
}

function contains(needle: unknown, haystack: unknown): boolean {
  if (Array.isArray(haystack)) return haystack.some((element) => equal(needle, element));
  return typeof needle === 'string' && typeof haystack === 'string' && haystack.includes(needle);
}
