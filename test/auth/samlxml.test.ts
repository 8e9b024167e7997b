import t from 'tap';
import { SamlError } from '../../src/auth/samlerror.js';
import { parseSamlXml } from '../../src/auth/samlxml.js';

t.test('parseSamlXml refuses broken or DTD-bearing XML with a typed error, never a crash', async (t) => {
  const cases: [string, string, string][] = [
    ['a CDATA section after the document element', '<a/><![CDATA[x]]>', 'SAML_MALFORMED'],
    ['a CDATA section after a whole Response', '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r"/><![CDATA[_r]]>', 'SAML_MALFORMED'],
    ['an unclosed element', '<a><b></a>', 'SAML_MALFORMED'],
    ['an unclosed attribute', '<a b="1></a>', 'SAML_MALFORMED'],
    ['nothing', '', 'SAML_MALFORMED'],
    ['a DOCTYPE', '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', 'SAML_DOCTYPE'],
  ];
  for (const [name, xml, code] of cases) {
    try {
      parseSamlXml(xml);
      t.fail(`${name}: parsed`);
    } catch (err) {
      t.type(err, SamlError, `${name}: a SamlError`);
      t.equal((err as SamlError).code, code, `${name}: ${code}`);
    }
  }
});

t.test('parseSamlXml reads well-formed XML as it is', async (t) => {
  const cases: [string, string, string][] = [
    ['a BOM before the XML declaration', '\ufeff<?xml version="1.0"?><a/>', 'a'],
    ['CRLF line ends', '<a>\r\n<b/></a>', 'a'],
    ['a CDATA section inside the element', '<a><![CDATA[x]]></a>', 'a'],
  ];
  for (const [name, xml, root] of cases) t.equal(parseSamlXml(xml).documentElement.localName, root, name);
});
