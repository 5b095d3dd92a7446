// Throwaway certificate authority and server certificate for 127.0.0.1 / localhost / ::1,
// made with the openssl CLI in a temporary directory.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
}

// Returns { dir, caCert, caKey, cert, key, caCertPem, certPem, keyPem, issue(), cleanup() }
// (paths + contents). issue(name, {client, san, cn}) signs another leaf with the same CA: a
// server certificate for the same names (a new serial), or for other ones (san: the
// subjectAltName value, e.g. 'DNS:other.example'; cn: the subject's CN, default localhost), or
// with client: true a client certificate; it returns { cert, key, certPem, keyPem, serial } with
// serial as serialOf() gives it.
export function makeTestCA({ dir } = {}) {
  dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ob-tls-'));
  const ext = path.join(dir, 'server.ext');
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      '',
    ].join('\n'),
  );
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=OpenBridge Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=localhost'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-sha256', '-extfile', 'server.ext'], dir);
  const r = {
    dir,
    caCert: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca.key'),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
  };
  r.caCertPem = fs.readFileSync(r.caCert, 'utf8');
  r.certPem = fs.readFileSync(r.cert, 'utf8');
  r.keyPem = fs.readFileSync(r.key, 'utf8');
  r.cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  r.issue = (name, { client = false, san, cn } = {}) => {
    const extFile = client || san ? path.join(dir, `${name}.ext`) : ext;
    if (client) fs.writeFileSync(extFile, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    else if (san) fs.writeFileSync(extFile, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', `${name}.key`, '-out', `${name}.csr`,
      '-subj', `/CN=${cn ?? (client ? name : 'localhost')}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAserial', 'ca.srl',
      '-out', `${name}.pem`, '-days', '2', '-sha256', '-extfile', extFile], dir);
    const out = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    out.certPem = fs.readFileSync(out.cert, 'utf8');
    out.keyPem = fs.readFileSync(out.key, 'utf8');
    out.serial = serialOf(out.certPem);
    return out;
  };
  r.serial = serialOf(r.certPem);
  return r;
}

// A PEM certificate's serial number in upper-case hex, whole bytes (a leading 0 kept), as
// Node's getPeerCertificate().serialNumber and the gateway's log lines print it.
export function serialOf(pem) {
  return new crypto.X509Certificate(pem).serialNumber.toUpperCase();
}
