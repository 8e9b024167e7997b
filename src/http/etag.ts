/**
 * etag: entity tags and the If-Match / If-None-Match conditions (RFC 9110 §8.8.3, §13.1.1, §13.1.2).
 *
 *   If-None-Match: W/"3", "x,y"   ->  [{ weak: true, opaque: '3' }, { weak: false, opaque: 'x,y' }]
 *   If-None-Match: *              ->  '*'
 */

/** EntityTag is one parsed entity-tag; `opaque` is the text between the quotes. */
export interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string;
}

/** TagList is an If-Match or If-None-Match field value: `*`, or the entity-tags it lists. */
export type TagList = '*' | readonly EntityTag[];

/** MAX_TAGS bounds how many entity-tags one field is read for; the header size limit bounds it anyway. */
const MAX_TAGS = 64;

/** isEtagc is etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3): visible characters but DQUOTE. */
function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || code >= 0x80;
}

/**
 * parseTagList reads `*` or a comma-separated list of entity-tags (RFC 9110 §5.6.1: empty members are
 * ignored). A member that is not an entity-tag is skipped up to the next comma; it can match nothing.
 * Commas inside the quotes belong to the tag.
 */
export function parseTagList(field: string): TagList {
  if (field.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  while (i < field.length && tags.length < MAX_TAGS) {
    while (i < field.length && (field[i] === ' ' || field[i] === '\t' || field[i] === ',')) i++;
    if (i >= field.length) break;
    const weak = field.startsWith('W/', i);
    let j = weak ? i + 2 : i;
    let tag: EntityTag | null = null;
    if (field[j] === '"') {
      let k = j + 1;
      while (k < field.length && isEtagc(field.charCodeAt(k))) k++;
      if (field[k] === '"') {
        tag = { weak, opaque: field.slice(j + 1, k) };
        j = k + 1;
        while (j < field.length && (field[j] === ' ' || field[j] === '\t')) j++;
        if (j < field.length && field[j] !== ',') tag = null; // text after the closing quote
      }
    }
    if (tag !== null) tags.push(tag);
    else {
      // Not an entity-tag: skip this member.
      const comma = field.indexOf(',', j);
      j = comma < 0 ? field.length : comma;
    }
    i = j;
  }
  return tags;
}

/** parseEtag reads one entity-tag (an ETag field value), or null when it is not one. */
export function parseEtag(value: string): EntityTag | null {
  const list = parseTagList(value);
  return list !== '*' && list.length === 1 ? list[0]! : null;
}

/** weakMatch is weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal, weak or not. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/**
 * listMatches tells whether a condition field names the current entity-tag: `*` names any current
 * representation, a list names it when one member compares equal under `same` (weak comparison by
 * default, as If-None-Match uses; RFC 9110 §13.1.2).
 */
export function listMatches(field: string, current: EntityTag, same: (listed: EntityTag, current: EntityTag) => boolean = weakMatch): boolean {
  const list = parseTagList(field);
  return list === '*' || list.some((tag) => same(tag, current));
}
