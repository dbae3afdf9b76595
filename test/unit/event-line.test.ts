import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  eventFromParsed,
  type InvalidLine,
  MAX_TIME_MS,
  parseEventLine,
  scanEventLine,
  type ValidEvent,
} from '../../src/core/event-line.js';

function run(line: string | Buffer): ValidEvent | InvalidLine {
  return parseEventLine(typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
}

function valid(line: string | Buffer): ValidEvent {
  const result = run(line);
  assert.ok(
    result.ok,
    `expected a valid event, got ${result.ok ? '' : `${result.reason}: ${result.detail}`}`,
  );
  return result;
}

function reason(line: string | Buffer): string {
  const result = run(line);
  assert.ok(!result.ok, `expected a quarantined line, got ${result.ok ? result.record.toString() : ''}`);
  return result.reason;
}

function record(line: string | Buffer): string {
  return valid(line).record.toString('utf8');
}

function jsonParseMessage(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`JSON.parse accepted ${text}`);
}

/** A minimal valid line with the given properties body (without braces). */
function withProps(body: string, event = '"e"'): string {
  return `{"event":${event},"properties":{${body}}}`;
}

function md5Key(parts: unknown[]): string {
  return hash('md5', JSON.stringify(parts), 'base64url');
}

describe('parseEventLine', () => {
  describe('rule 1: line framing and whitespace', () => {
    it('ignores a single trailing CR (CRLF files)', () => {
      // Arrange
      const line = withProps('"time":1700000000');
      // Act
      const crlf = valid(`${line}\r`);
      // Assert
      assert.deepEqual(crlf, valid(line));
    });

    it('accepts JSON whitespace before, between and after tokens', () => {
      const line = ' \t\r\n{ "event" :\t"e" ,\n"properties" : { "time" : 1700000000 } } \t\n';

      const result = valid(line);

      assert.equal(result.timeMs, 1_700_000_000_000);
      assert.equal(result.eventName, 'e');
      assert.equal(
        result.record.toString(),
        '{"event_name":"e","time":1700000000000,"distinct_id":null,"device_id":null,"user_id":null,"insert_id":null,"properties":{ "time" : 1700000000 }}',
      );
    });

    it('classifies empty and whitespace-only lines as empty_line', () => {
      for (const line of ['', ' ', '\t \t', '\r', ' \r', '\n\r\n', ' \r\r']) {
        assert.equal(reason(line), 'empty_line', JSON.stringify(line));
      }
    });

    it('treats non-JSON whitespace and a byte order mark as invalid JSON', () => {
      const body = withProps('"time":1');
      for (const line of [`\f${body}`, `\u00a0${body}`, `${body}\v`, `\ufeff${body}`, '\f']) {
        assert.equal(reason(line), 'invalid_json', JSON.stringify(line));
      }
    });
  });

  describe('rule 2: UTF-8', () => {
    it('quarantines invalid UTF-8 inside strings', () => {
      const cases = [
        [0xff], // never valid
        [0xc0, 0xaf], // overlong
        [0xed, 0xa0, 0x80], // encoded surrogate
        [0xe2, 0x82], // truncated
        [0x80], // lone continuation
      ];
      for (const bytes of cases) {
        const line = Buffer.concat([
          Buffer.from('{"event":"e","properties":{"time":1,"x":"a'),
          Buffer.from(bytes),
          Buffer.from('"}}'),
        ]);
        assert.equal(reason(line), 'invalid_utf8', bytes.join(' '));
      }
    });

    it('prefers invalid_utf8 over invalid_json', () => {
      const line = Buffer.concat([Buffer.from('{"event":'), Buffer.from([0xff]), Buffer.from('}')]);

      assert.equal(reason(line), 'invalid_utf8');
    });

    it('accepts multi-byte UTF-8 and decodes it', () => {
      const result = valid(withProps('"time":1,"distinct_id":"ü😀"', '"Café 😀"'));

      assert.equal(result.eventName, 'Café 😀');
      assert.equal(JSON.parse(result.record.toString()).distinct_id, 'ü😀');
    });
  });

  describe('rule 3: the JSON grammar is exactly JSON.parse', () => {
    const broken = [
      '{"event":"e","properties":{"time":1},}',
      "{'event':'e'}",
      '{"event":"e","properties":{"time":01}}',
      '{"event":"e","properties":{"time":1.}}',
      '{"event":"e","properties":{"time":.5}}',
      '{"event":"e","properties":{"time":+1}}',
      '{"event":"e","properties":{"time":-}}',
      '{"event":"e","properties":{"time":1e}}',
      '{"event":"e","properties":{"time":1e+}}',
      '{"event":"e","properties":{"time":1e.5}}',
      '{"event":"e","properties":{"time":1.e5}}',
      '{"event":"e","properties":{"time":-01}}',
      '{"event":"e","properties":{"time":00}}',
      '{"event":"e","properties":{"time":1.5.5}}',
      '{"event":"e","properties":{"time":1e5e5}}',
      '{"event":"e","properties":{"time":--1}}',
      '{"event":"\\\'","properties":{"time":1}}',
      '{"event":"\\a","properties":{"time":1}}',
      '{"event":"\\U0041","properties":{"time":1}}',
      '{"event":"e",\v"properties":{"time":1}}',
      '{"event":"e","properties":{"time":NaN}}',
      '{"event":"e","properties":{"time":Infinity}}',
      '{"event":"e","properties":{"time":-Infinity}}',
      '{"event":"e\tx","properties":{"time":1}}',
      '{"event":"e\u0000","properties":{"time":1}}',
      '{"event":"\\x41","properties":{"time":1}}',
      '{"event":"\\u12G4","properties":{"time":1}}',
      '{"event":"\\u12","properties":{"time":1}}',
      '{"event":"\\',
      '{"event":"e","properties":{"time":1}} x',
      '{"event":"e","properties":{"time":1}}{}',
      '{"event":"e","properties":{"time":1}',
      '{"event":"e","properties":{"time":1]}',
      '{"event":"e","properties":{"time":1,"a":{]}}',
      '{"event":"e","properties":{"time":1,"a":[}}}',
      '[}',
      '{ ]',
      '{"event":"e","properties":{"time":tru}}',
      '{"event":"e","properties":{"time":nul}}',
      '{"event":"e","properties":{"time":falsey}}',
      '{"event" "e"}',
      '{"event":}',
      '{,}',
      '[1,]',
      '[,1]',
      '{"a":1 "b":2}',
      '{"a"::1}',
      '{1:2}',
      '"abc',
      '-',
      '1 2',
    ];

    for (const line of broken) {
      it(`rejects ${JSON.stringify(line)} with JSON.parse's message`, () => {
        const result = run(line);

        assert.ok(!result.ok);
        assert.equal(result.reason, 'invalid_json');
        assert.equal(result.detail, jsonParseMessage(line));
        assert.equal(scanEventLine(Buffer.from(line)), undefined);
      });
    }

    it('accepts the corners of the grammar that JSON.parse accepts', () => {
      const props = [
        '"time":1',
        '"a":[]',
        '"b":{}',
        '"c":[[],[{}],{"x":[true,false,null]}]',
        '"d":-0.0e-0',
        '"e":0E+10',
        '"f":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\ude00\\ud800"',
        '"g":"\u007f"',
        '"":""',
      ].join(',');
      const line = withProps(props);

      const result = valid(line);

      assert.deepEqual(JSON.parse(result.record.toString()).properties, JSON.parse(line).properties);
    });

    it('handles very deep nesting without recursion', () => {
      // Arrange: 200k nested arrays inside properties, then an unclosed variant.
      const depth = 200_000;
      const deep = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
      const line = withProps(`"time":1,"deep":${deep}`);
      // Act
      const result = valid(line);
      const unclosed = run(withProps(`"time":1,"deep":${'['.repeat(depth)}`));
      // Assert
      assert.ok(result.record.toString().endsWith(`"properties":{"time":1,"deep":${deep}}}`));
      assert.ok(!unclosed.ok);
      assert.equal(unclosed.reason, 'invalid_json');
    });

    it('handles deeply nested objects too', () => {
      const depth = 50_000;
      const deep = `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}`;

      const result = valid(withProps(`"deep":${deep},"time":2`));

      assert.equal(result.timeMs, 2000);
    });
  });

  describe('rule 4: the top-level value is an object', () => {
    for (const line of [
      '[]',
      '[{"event":"e","properties":{"time":1}}]',
      '"x"',
      '1',
      '-0.5e3',
      'null',
      'true',
      'false',
    ]) {
      it(`quarantines ${line} as not_an_object`, () => {
        assert.equal(reason(line), 'not_an_object');
      });
    }
  });

  describe('rule 5: duplicate keys, the last one wins', () => {
    it('takes the last event', () => {
      const result = valid('{"event":"first","properties":{"time":1},"event":"last"}');

      assert.equal(result.eventName, 'last');
      assert.ok(result.record.toString().startsWith('{"event_name":"last",'));
    });

    it('quarantines when a later event is not a string', () => {
      assert.equal(reason('{"event":"first","properties":{"time":1},"event":null}'), 'missing_event');
    });

    it('takes the last properties, including when it is not an object', () => {
      const later = valid(
        '{"properties":{"time":"x"},"event":"e","properties":{"time":5,"distinct_id":"d"}}',
      );
      const earlierObject = reason('{"properties":{"time":5},"event":"e","properties":7}');

      assert.equal(later.timeMs, 5000);
      assert.equal(JSON.parse(later.record.toString()).distinct_id, 'd');
      assert.ok(later.record.toString().endsWith(',"properties":{"time":5,"distinct_id":"d"}}'));
      assert.equal(earlierObject, 'invalid_time');
    });

    it('forgets fields of an earlier properties object', () => {
      const result = valid(
        '{"event":"e","properties":{"time":5,"distinct_id":"old","$insert_id":"i"},"properties":{"time":6}}',
      );

      assert.equal(result.timeMs, 6000);
      assert.equal(result.dedupKey, undefined);
      assert.match(result.record.toString(), /"distinct_id":null/);
      assert.equal(
        reason('{"event":"e","properties":{"time":5},"properties":{"distinct_id":"d"}}'),
        'invalid_time',
      );
    });

    it('takes the last time and identity fields', () => {
      const result = valid(
        withProps(
          '"time":"bad","distinct_id":"a","time":7,"distinct_id":"b","$insert_id":1,"$insert_id":"i"',
        ),
      );

      assert.equal(result.timeMs, 7000);
      const rec = JSON.parse(result.record.toString());
      assert.equal(rec.distinct_id, 'b');
      assert.equal(rec.insert_id, 'i');
      assert.equal(reason(withProps('"time":7,"time":"7"')), 'invalid_time');
    });

    it('compares keys by their decoded value', () => {
      const result = valid(
        '{"\\u0065vent":"a","prop\\u0065rties":{"ti\\u006de":3,"distinct\\u005fid":"d","\\u0024insert_id":"i"}}',
      );

      assert.equal(result.eventName, 'a');
      assert.equal(result.timeMs, 3000);
      assert.deepEqual(
        [JSON.parse(result.record.toString()).distinct_id, JSON.parse(result.record.toString()).insert_id],
        ['d', 'i'],
      );
      assert.equal(reason('{"event":"a","properties":{"time":3},"\\u0065vent":""}'), 'missing_event');
    });

    it('ignores look-alike keys at other depths', () => {
      const result = valid(
        '{"x":{"event":"no","properties":{"time":9}},"event":"yes","properties":{"nested":{"time":-1,"distinct_id":"no"},"time":1}}',
      );

      assert.equal(result.eventName, 'yes');
      assert.equal(result.timeMs, 1000);
      assert.match(result.record.toString(), /"distinct_id":null/);
      assert.equal(reason('{"event":"e","x":{"properties":{"time":1}}}'), 'invalid_time');
      assert.equal(reason('{"event":"e","properties":{"a":{"time":1}}}'), 'invalid_time');
      assert.equal(reason('{"event":"e","properties":[{"time":1}]}'), 'invalid_time');
    });
  });

  describe('rule 6: event is a non-empty string', () => {
    for (const line of [
      '{"properties":{"time":1}}',
      '{"event":"","properties":{"time":1}}',
      '{"event":1,"properties":{"time":1}}',
      '{"event":null,"properties":{"time":1}}',
      '{"event":["e"],"properties":{"time":1}}',
      '{"event":{"name":"e"},"properties":{"time":1}}',
      '{"event":true,"properties":{"time":1}}',
      '{}',
    ]) {
      it(`quarantines ${line} as missing_event`, () => {
        assert.equal(reason(line), 'missing_event');
      });
    }

    it('checks event before properties', () => {
      assert.equal(reason('{"event":""}'), 'missing_event');
    });

    it('accepts an event made of one escaped character', () => {
      assert.equal(valid(withProps('"time":1', '"\\u0000"')).eventName, '\u0000');
    });
  });

  describe('rule 7: properties.time is a finite non-negative number', () => {
    const bad = [
      '{"event":"e"}',
      '{"event":"e","properties":null}',
      '{"event":"e","properties":"x"}',
      '{"event":"e","properties":[]}',
      '{"event":"e","properties":[1]}',
      withProps(''),
      withProps('"Time":1'),
      withProps('"time":"1700000000"'),
      withProps('"time":null'),
      withProps('"time":true'),
      withProps('"time":[1]'),
      withProps('"time":{}'),
      withProps('"time":-1'),
      withProps('"time":-0.0001'),
      withProps('"time":-1e-300'),
      withProps('"time":1e400'),
      withProps('"time":-1e400'),
    ];
    for (const line of bad) {
      it(`quarantines ${line} as invalid_time`, () => {
        assert.equal(reason(line), 'invalid_time');
      });
    }

    it('accepts -0 and 0 as time 0', () => {
      for (const time of ['-0', '0', '-0.0', '0e5', '-0E-3', '1e-400']) {
        const result = valid(withProps(`"time":${time}`));
        assert.ok(Object.is(result.timeMs, 0), time);
        assert.match(result.record.toString(), /"time":0,/);
      }
    });
  });

  describe('rule 8: seconds or milliseconds', () => {
    const cases: Array<[string, number]> = [
      ['1', 1000],
      ['1700000000', 1_700_000_000_000],
      ['1700000000.999', 1_700_000_000_999],
      ['1700000000.9999', 1_700_000_000_999],
      ['1700000000.0001', 1_700_000_000_000],
      ['1700000000.5', 1_700_000_000_500],
      ['0.001', 1],
      ['0.0009', 0],
      ['1.7e9', 1_700_000_000_000],
      ['17E+8', 1_700_000_000_000],
      ['99999999999', 99_999_999_999_000],
      ['99999999999.5', 99_999_999_999_500],
      ['100000000000', 100_000_000_000],
      ['1e11', 100_000_000_000],
      ['100000000000.7', 100_000_000_000],
      ['1700000000123', 1_700_000_000_123],
      ['1700000000123.9', 1_700_000_000_123],
      ['8640000000000000', MAX_TIME_MS],
      ['8.64e15', MAX_TIME_MS],
      ['8640000000000000.4', MAX_TIME_MS],
    ];
    for (const [token, expected] of cases) {
      it(`reads ${token} as ${expected} ms`, () => {
        const result = valid(withProps(`"time":${token}`));

        assert.equal(result.timeMs, expected);
        assert.equal(JSON.parse(result.record.toString()).time, expected);
      });
    }

    for (const token of ['8640000000000001', '8640000000000002', '1e16', '1e300', '9007199254740993']) {
      it(`quarantines ${token} as time_out_of_range`, () => {
        assert.equal(reason(withProps(`"time":${token}`)), 'time_out_of_range');
      });
    }
  });

  describe('rule 9: identity fields', () => {
    it('keeps string ids as their raw tokens, escapes untouched', () => {
      const line = withProps(
        '"time":1,"distinct_id":"a\\/b","$device_id":"\\u00e9","$user_id":"\\"q\\"","$insert_id":"\\ud83d\\ude00"',
      );

      const rec = record(line);

      assert.equal(
        rec.slice(0, rec.indexOf(',"properties":')),
        '{"event_name":"e","time":1000,"distinct_id":"a\\/b","device_id":"\\u00e9","user_id":"\\"q\\"","insert_id":"\\ud83d\\ude00"',
      );
    });

    it('turns number ids into strings of their token text', () => {
      const line = withProps('"time":1,"distinct_id":123,"$device_id":1.50,"$user_id":-0,"$insert_id":1E+3');

      const rec = record(line);

      assert.match(rec, /"distinct_id":"123","device_id":"1.50","user_id":"-0","insert_id":"1E\+3"/);
    });

    it('turns other values and missing ids into null, and a missing distinct_id is fine', () => {
      const line = withProps(
        '"time":1,"distinct_id":null,"$device_id":true,"$user_id":{"a":1},"$insert_id":[1]',
      );

      const rec = JSON.parse(record(line));

      assert.deepEqual(
        [rec.distinct_id, rec.device_id, rec.user_id, rec.insert_id],
        [null, null, null, null],
      );
      assert.equal(JSON.parse(record(withProps('"time":1'))).distinct_id, null);
    });

    it('keeps an empty string id', () => {
      assert.equal(JSON.parse(record(withProps('"time":1,"distinct_id":""'))).distinct_id, '');
    });
  });

  describe('rule 10: the record', () => {
    it('has the exact shape, and properties are the input bytes', () => {
      // Arrange: big integers, number formats, escapes, key order and inner whitespace must survive.
      const props =
        '{"z":9007199254740993,"a":1.0,"m":1E5,"time":1700000000,"s":"\\u00e9\\n","distinct_id":"d", "arr" : [ 1 , -0 ]}';
      const line = `{"extra":1,"event":"Buy","properties":${props},"other":{"x":2}}`;
      // Act
      const rec = record(line);
      // Assert
      assert.equal(
        rec,
        `{"event_name":"Buy","time":1700000000000,"distinct_id":"d","device_id":null,"user_id":null,"insert_id":null,"properties":${props}}`,
      );
      assert.deepEqual(JSON.parse(rec).properties, JSON.parse(line).properties);
      assert.equal(Object.hasOwn(JSON.parse(rec), 'extra'), false);
    });

    it('keeps the raw event token', () => {
      assert.ok(record(withProps('"time":1', '"\\u0041\\/b"')).startsWith('{"event_name":"\\u0041\\/b",'));
    });

    it('keeps every record intact when many are produced and kept', () => {
      // Records share allocation slabs: none may overwrite another.
      const lines = Array.from({ length: 3000 }, (_, i) =>
        withProps(`"time":${1_700_000_000 + i},"distinct_id":"user-${i}","pad":"${'x'.repeat(i % 97)}"`),
      );

      const records = lines.map((line) => valid(line).record);

      records.forEach((rec, i) => {
        const parsed = JSON.parse(rec.toString());
        assert.equal(parsed.distinct_id, `user-${i}`);
        assert.equal(parsed.time, (1_700_000_000 + i) * 1000);
        assert.equal(parsed.properties.pad, 'x'.repeat(i % 97));
      });
    });

    it('builds large records', () => {
      const big = 'y'.repeat(100_000);
      const line = withProps(`"time":1,"big":"${big}","distinct_id":"${big}"`);

      const parsed = JSON.parse(record(line));

      assert.equal(parsed.distinct_id, big);
      assert.equal(parsed.properties.big, big);
    });
  });

  describe('rule 11: dedup key', () => {
    it('is undefined without $insert_id', () => {
      assert.equal(valid(withProps('"time":1,"distinct_id":"d"')).dedupKey, undefined);
      assert.equal(valid(withProps('"time":1,"$insert_id":null')).dedupKey, undefined);
    });

    it('is the md5 of [insert_id, distinct_id, event, second] in base64url', () => {
      const result = valid(withProps('"time":1700000000.999,"distinct_id":"d","$insert_id":"i"', '"Buy"'));

      assert.equal(result.dedupKey, md5Key(['i', 'd', 'Buy', 1_700_000_000]));
      assert.match(result.dedupKey ?? '', /^[A-Za-z0-9_-]{22}$/);
    });

    it('uses null for a missing or non-string distinct_id', () => {
      const expected = md5Key(['i', null, 'e', 1]);

      assert.equal(valid(withProps('"time":1,"$insert_id":"i"')).dedupKey, expected);
      assert.equal(valid(withProps('"time":1,"$insert_id":"i","distinct_id":false')).dedupKey, expected);
    });

    it('uses decoded values, so escaped and raw spellings match', () => {
      const raw = valid(withProps('"time":1,"distinct_id":"dé","$insert_id":"a/b"', '"ev"'));
      const escaped = valid(
        withProps('"time":1,"distinct_id":"d\\u00e9","$insert_id":"a\\/b"', '"\\u0065v"'),
      );

      assert.equal(escaped.dedupKey, raw.dedupKey);
      assert.equal(raw.dedupKey, md5Key(['a/b', 'dé', 'ev', 1]));
    });

    it('uses the token text of number ids, so 123 and "123" match', () => {
      const numbers = valid(withProps('"time":1,"distinct_id":45,"$insert_id":123'));
      const strings = valid(withProps('"time":1,"distinct_id":"45","$insert_id":"123"'));

      assert.equal(numbers.dedupKey, strings.dedupKey);
      assert.equal(numbers.dedupKey, md5Key(['123', '45', 'e', 1]));
      assert.notEqual(valid(withProps('"time":1,"$insert_id":1.0')).dedupKey, numbers.dedupKey);
    });

    it('groups times by the second', () => {
      const key = (time: string) => valid(withProps(`"time":${time},"$insert_id":"i"`)).dedupKey;

      assert.equal(key('1700000000'), key('1700000000.999'));
      assert.equal(key('1700000000'), key('1700000000500'));
      assert.notEqual(key('1700000000'), key('1700000001'));
      assert.equal(key('0'), md5Key(['i', null, 'e', 0]));
    });

    it('differs when the event or the ids differ', () => {
      const base = valid(withProps('"time":1,"distinct_id":"d","$insert_id":"i"', '"a"')).dedupKey;

      assert.notEqual(valid(withProps('"time":1,"distinct_id":"d","$insert_id":"i"', '"b"')).dedupKey, base);
      assert.notEqual(valid(withProps('"time":1,"distinct_id":"x","$insert_id":"i"', '"a"')).dedupKey, base);
      assert.notEqual(valid(withProps('"time":1,"distinct_id":"d","$insert_id":"j"', '"a"')).dedupKey, base);
    });

    it('handles long ids and events', () => {
      const long = 'q'.repeat(5000);

      const result = valid(withProps(`"time":1,"distinct_id":"${long}","$insert_id":"${long}"`, `"${long}"`));

      assert.equal(result.dedupKey, md5Key([long, long, long, 1]));
    });
  });

  describe('rule 12: decoding strings', () => {
    it('decodes event names with and without escapes', () => {
      assert.equal(valid(withProps('"time":1', '"plain é"')).eventName, 'plain é');
      assert.equal(valid(withProps('"time":1', '"a\\"b\\\\c\\u00e9\\n"')).eventName, 'a"b\\cé\n');
    });
  });

  describe('scanEventLine and eventFromParsed', () => {
    it('scanEventLine returns undefined only for grammar errors', () => {
      assert.equal(scanEventLine(Buffer.from('{"a":')), undefined);
      assert.deepEqual(scanEventLine(Buffer.from('[]')), run('[]'));
      assert.deepEqual(scanEventLine(Buffer.from(' ')), run(' '));
    });

    it('eventFromParsed gives the same result as the scanner on canonical lines', () => {
      const value = {
        x: 1,
        event: 'Buy é',
        properties: {
          time: 1_700_000_000.25,
          distinct_id: 'd',
          $device_id: 5,
          $insert_id: 'i',
          n: [1, { a: null }],
        },
      };
      const line = JSON.stringify(value);

      const fromScanner = valid(line);
      const fromParsed = eventFromParsed(JSON.parse(line));

      assert.deepEqual(fromParsed, fromScanner);
    });

    it('eventFromParsed classifies like the scanner', () => {
      for (const line of ['[1]', '{}', '{"event":"e"}', withProps('"time":-1'), withProps('"time":1e16')]) {
        const fromScanner = run(line);
        const fromParsed = eventFromParsed(JSON.parse(line));
        assert.equal(fromParsed.ok, false);
        assert.equal(fromScanner.ok, false);
        assert.equal(!fromParsed.ok && fromParsed.reason, !fromScanner.ok && fromScanner.reason, line);
      }
    });
  });
});
