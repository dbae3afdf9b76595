import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type LineSink, LineSplitter } from '../../src/engine/source-lines.js';

function collect(maxLineBytes: number) {
  const lines: { text: string; n: number }[] = [];
  const overlong: { head: number; total: number; n: number }[] = [];
  const sink: LineSink = {
    line: (chunk, start, end, n) => lines.push({ text: chunk.toString('latin1', start, end), n }),
    overlong: (head, total, n) => overlong.push({ head: head.length, total, n }),
  };
  return { splitter: new LineSplitter(sink, maxLineBytes), lines, overlong };
}

describe('LineSplitter', () => {
  test('any chunking of a text yields the same lines as splitting it whole', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\n', '\r', 'é') }), { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        (pieces, cuts) => {
          const bytes = Buffer.from(pieces.join(''), 'latin1');
          const { splitter, lines } = collect(1 << 20);
          let offset = 0;
          for (let i = 0; offset < bytes.length; i += 1) {
            const size = cuts[i % cuts.length]!;
            splitter.push(bytes.subarray(offset, offset + size));
            offset += size;
          }
          splitter.end();
          const text = bytes.toString('latin1');
          const expected = text.length === 0 ? [] : text.split('\n');
          if (text.endsWith('\n')) expected.pop();
          assert.deepEqual(
            lines.map((l) => l.text),
            expected,
          );
          assert.deepEqual(
            lines.map((l) => l.n),
            expected.map((_, i) => i + 1),
          );
        },
      ),
      { seed: 3, numRuns: 500 },
    );
  });

  test('a line over the limit is reported by its head and length, and memory does not follow it', () => {
    const { splitter, lines, overlong } = collect(10);
    splitter.push(Buffer.from('short\n0123456789ABC'));
    splitter.push(Buffer.from('DEF'.repeat(1000)));
    splitter.push(Buffer.from('\nnext'));
    splitter.end();
    assert.deepEqual(lines, [
      { text: 'short', n: 1 },
      { text: 'next', n: 3 },
    ]);
    assert.equal(overlong.length, 1);
    assert.equal(overlong[0]!.total, 13 + 3000);
    assert.equal(overlong[0]!.n, 2);
  });

  test('a UTF-8 byte order mark at the start of an object is dropped', () => {
    const { splitter, lines } = collect(100);
    splitter.push(Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d, 10, 0x7b, 0x7d]));
    splitter.end();
    assert.deepEqual(
      lines.map((l) => l.text),
      ['{}', '{}'],
    );
  });
});
