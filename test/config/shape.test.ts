/**
 * shape: the constants kept apart from the schema say what the schema says.
 */
import t from 'tap';
import { CONFIG_SECTIONS, DEFAULT_SCIM_RATE_LIMIT } from '../../src/config/shape.js';
import { configSchema } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';

t.test('CONFIG_SECTIONS are the schema top-level keys, in its order', async (t) => {
  t.same([...CONFIG_SECTIONS], Object.keys(configSchema.shape));
});

t.test('DEFAULT_SCIM_RATE_LIMIT is what an IdP gets when it sets none', async (t) => {
  const c = validateConfig({ idps: [{ id: 'okta', name: 'Okta', ssoUrl: 'https://idp.example/sso', certificate: 'idp.pem', entityId: 'urn:idp', default: true }] });
  t.equal(c.idps[0]!.scimRateLimit, DEFAULT_SCIM_RATE_LIMIT);
});
