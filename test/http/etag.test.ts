/**
 * etag: parsing If-Match / If-None-Match fields and comparing entity tags (RFC 9110 §8.8.3, §13.1).
 */
import t from 'tap';
import { listMatches, parseEtag, parseTagList, weakMatch, type EntityTag } from '../../src/http/etag.js';

const W = (opaque: string): EntityTag => ({ weak: true, opaque });
const S = (opaque: string): EntityTag => ({ weak: false, opaque });

t.test('parseTagList reads *, lists, weak and strong tags, and skips members that are not tags', async (t) => {
  const cases: [string, ReturnType<typeof parseTagList>][] = [
    ['*', '*'],
    [' * ', '*'],
    ['"abc"', [S('abc')]],
    ['W/"abc"', [W('abc')]],
    ['"a", W/"b"', [S('a'), W('b')]],
    ['"a",W/"b" ,  "c"', [S('a'), W('b'), S('c')]],
    ['"a,b", "c"', [S('a,b'), S('c')]],
    ['""', [S('')]],
    [', , "a",,', [S('a')]],
    ['abc', []],
    ['"unterminated', []],
    ['w/"lower-case weak prefix"', []],
    ['W/ "space after slash"', []],
    ['"a" junk, "b"', [S('b')]],
    ['"with space", "b"', [S('b')]],
    ['"a", *', [S('a')]],
    ['', []],
  ];
  for (const [field, want] of cases) t.same(parseTagList(field), want, JSON.stringify(field));
});

t.test('parseEtag reads exactly one tag', async (t) => {
  t.same(parseEtag('W/"3"'), W('3'));
  t.same(parseEtag('"3"'), S('3'));
  t.equal(parseEtag('"3", "4"'), null);
  t.equal(parseEtag('*'), null);
  t.equal(parseEtag('3'), null);
});

t.test('listMatches: weak comparison by default, * names any current representation', async (t) => {
  const cases: [string, EntityTag, boolean][] = [
    ['W/"3"', W('3'), true],
    ['"3"', W('3'), true], // weak comparison ignores the W/ on either side (RFC 9110 §8.8.3.2)
    ['W/"3"', S('3'), true],
    ['W/"4"', W('3'), false],
    ['"x", W/"3"', W('3'), true],
    ['"x", "y"', W('3'), false],
    ['*', W('3'), true],
    ['garbage', W('3'), false],
    ['"3-abc"', W('3'), false],
  ];
  for (const [field, current, want] of cases) t.equal(listMatches(field, current), want, `${field} vs ${JSON.stringify(current)}`);
  t.ok(weakMatch(S('a'), W('a')));
  const versionOnly = (listed: EntityTag) => listed.opaque.split('-')[0] === '3';
  t.ok(listMatches('W/"3-abc"', W('3'), versionOnly), 'a caller can compare with its own rule');
});
