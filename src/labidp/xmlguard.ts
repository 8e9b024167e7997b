/**
 * xmlguard: the XML check samlify runs on every message the lab IdP receives (setSchemaValidator).
 *
 * Why not a schema validator package: @authenio/samlify-xsd-schema-validator needs Java, and
 * @authenio/samlify-xmllint-wasm (xmllint-wasm 4) takes ~300 ms per message and writes to the
 * console; @authenio/samlify-node-xmllint wraps an older emscripten build of libxml2. The lab IdP
 * only ever receives AuthnRequests from Tollgate's own SP, so it needs the security part of schema
 * validation, not conformance: no DTD or entity (XXE, entity expansion), well-formed XML, and a
 * single samlp:AuthnRequest root (SAML Core §3.4.1). That is what this does, with the strict
 * parser the SP uses (@xmldom/xmldom, as node-saml and samlify use).
 */
import { NS_PROTOCOL, parseSamlXml } from '../auth/samlxml.js';

/** guardLabXml resolves for a well-formed AuthnRequest without DTD, and rejects anything else. */
export async function guardLabXml(xml: string): Promise<true> {
  const root = parseSamlXml(xml).documentElement;
  if (root.namespaceURI !== NS_PROTOCOL || root.localName !== 'AuthnRequest') {
    throw new Error(`lab IdP accepts only samlp:AuthnRequest, got {${root.namespaceURI}}${root.localName}`);
  }
  return true;
}
