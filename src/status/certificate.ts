/**
 * certificate: the status page's "Tollgate's certificate" section, shown only when the runtime says
 * a CA for TLS inspection is configured. The CA itself and its download routes (`/ca.crt` as DER,
 * `/ca.pem` as PEM on ip.<cloud>) belong to the TLS module; this one only needs to know that a CA
 * exists and how a person can recognise it.
 */
import { html, type SafeHtml } from './html.js';
import type { StatusCa } from './view.js';

/** CaInfo is what the status page is told about the configured CA. */
export interface CaInfo {
  /** The certificate's subject, as a person reads it (e.g. "CN=Tollgate Lab CA, O=Example"). */
  readonly subject: string;
  /** SHA-256 fingerprint of the DER certificate, as colon-separated hex. */
  readonly sha256: string;
}

/** CaSource gives the current CA, or null when none is configured. */
export type CaSource = () => CaInfo | null;

/**
 * INSTALL_STEPS: one line per platform, as its settings name things today. Chromium on Linux keeps
 * its own store (NSS); on macOS and Windows Chrome and Edge use the system's, so those steps cover them.
 */
export const INSTALL_STEPS: readonly (readonly [platform: string, file: 'ca.crt' | 'ca.pem', steps: string])[] = [
  ['Chromium / Chrome on Linux', 'ca.pem', 'Open chrome://certificate-manager → Local certificates → Installed by you → Trusted certificates → Import.'],
  ['Firefox (its own store, on every system)', 'ca.crt', 'Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import…, then tick "Trust this CA to identify websites".'],
  ['macOS (Safari, Chrome, Edge)', 'ca.crt', 'Open the file to add it to Keychain Access, double-click the certificate, and under Trust set "When using this certificate" to Always Trust.'],
  ['Windows (Edge, Chrome)', 'ca.crt', 'Open the file → Install Certificate → Local Machine → "Place all certificates in the following store" → Browse → Trusted Root Certification Authorities → Finish.'],
];

/** caSection renders the section, or nothing without a CA. */
export function caSection(ca: StatusCa | null): SafeHtml | null {
  if (ca === null) return null;
  const url = (file: 'ca.crt' | 'ca.pem') => (file === 'ca.crt' ? ca.derUrl : ca.pemUrl);
  return html`<section aria-labelledby="ca"><h2 id="ca">Tollgate's certificate</h2>
<p>Tollgate inspects some HTTPS traffic. So that your browser trusts the pages it serves there, install Tollgate's certificate authority:
<a href="${ca.derUrl}">ca.crt</a> (DER) or <a href="${ca.pemUrl}">ca.pem</a> (PEM).</p>
<p>Check that it is the one your administrator names: subject <code>${ca.subject}</code>, SHA-256 fingerprint <code class="fp">${ca.sha256}</code>.</p>
<ul>${INSTALL_STEPS.map(([platform, file, steps]) => html`<li><strong>${platform}:</strong> download <a href="${url(file)}">${file}</a>. ${steps}</li>`)}</ul>
</section>`;
}

/** caLines is the same section in plain text. */
export function caLines(ca: StatusCa | null): string[] {
  if (ca === null) return [];
  return [
    "Tollgate's certificate (install it to trust inspected HTTPS pages):",
    `  ${ca.derUrl} (DER)`,
    `  ${ca.pemUrl} (PEM)`,
    `  subject ${ca.subject}`,
    `  SHA-256 ${ca.sha256}`,
  ];
}
