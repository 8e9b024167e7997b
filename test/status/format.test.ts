import t from 'tap';
import { HttpError } from '../../src/http/errors.js';
import { pickStatusFormat, type StatusFormat } from '../../src/status/format.js';

t.test('the variant comes from ?format= first, then from Accept by quality, HTML by default', async (t) => {
  const table: [format: string | null, accept: string | undefined, want: StatusFormat][] = [
    [null, undefined, 'html'],
    [null, '', 'html'],
    [null, '*/*', 'html'], // curl's default
    [null, 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8', 'html'], // Chromium
    [null, 'text/plain', 'text'],
    [null, 'text/plain, */*;q=0.1', 'text'],
    [null, 'application/json', 'json'],
    [null, 'application/json, text/plain;q=0.5', 'json'],
    [null, 'text/html;q=0.2, text/plain;q=0.9', 'text'],
    [null, 'TEXT/PLAIN', 'text'],
    [null, 'text/*', 'html'],
    [null, 'text/*, text/plain', 'text'], // the specific range beats the wildcard
    [null, 'text/plain;q=0, */*', 'html'], // q=0 means "not this"
    [null, 'image/png', 'html'], // nothing we have: the page anyway, not a 406
    [null, 'text/plain;q=garbage', 'html'],
    ['json', 'text/html', 'json'],
    ['text', 'application/json', 'text'],
    ['HTML', 'text/plain', 'html'],
  ];
  for (const [format, accept, want] of table) t.equal(pickStatusFormat(format, accept), want, `format=${format} accept=${accept}`);
});

t.test('an unknown ?format= is a 400 with a stable code', async (t) => {
  for (const bad of ['xml', '', 'json ']) {
    t.throws(() => pickStatusFormat(bad, undefined), new HttpError(400, 'bad_format', 'format must be html, json or text.'), JSON.stringify(bad));
  }
});
