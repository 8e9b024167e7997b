import t from 'tap';
import { loggableTarget } from '../../src/proxy/requestline.js';

t.test('loggableTarget removes userinfo from every target form and leaves the rest alone', async (t) => {
  const table: [string, string][] = [
    ['http://user:pass@example.com/a', 'http://example.com/a'],
    ['http://user@example.com:8080/a?b=c', 'http://example.com:8080/a?b=c'],
    ['http://a:b@c:d@example.com/', 'http://example.com/'],
    ['http://user:pass@[::1]:80/', 'http://[::1]:80/'],
    ['user:pass@example.com:443', 'example.com:443'],
    ['http://example.com/path@with-at', 'http://example.com/path@with-at'],
    ['http://example.com/?q=a@b', 'http://example.com/?q=a@b'],
    ['http://example.com#x@y', 'http://example.com#x@y'],
    ['/proxy.pac', '/proxy.pac'],
    ['example.com:443', 'example.com:443'],
    ['http://user:pa%40ss@example.com/', 'http://example.com/'],
  ];
  for (const [input, want] of table) t.equal(loggableTarget(input), want, input);
});
