import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";

/** The server's certificate and key as given, checked so a bad file is named (TLS itself says "no start line"). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

function read(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const user = userInfo().username;
    const hint = code === "EACCES" ? ` as user ${user}; give its group read access (chgrp ${user} ${file} && chmod 0640 ${file}; knockport gen-cert --owner ${user} makes a new pair so)` : "; check the path";
    throw new Error(`${flag} ${file}: cannot read (${code})${hint}`);
  }
}

const isCertificate = (pem: Buffer): boolean => {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
};

const isPrivateKey = (pem: Buffer): boolean => {
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
};

/** Reads --cert and --key; throws a message naming the file for an unreadable, swapped, wrong or mismatched one. */
export function readTlsFiles(certFile: string, keyFile: string): TlsFiles {
  const cert = read("--cert", certFile);
  const key = read("--key", keyFile);
  const swapped = !isCertificate(cert) && isPrivateKey(cert) && isCertificate(key);
  if (swapped) throw new Error(`--cert ${certFile} holds a private key and --key ${keyFile} a certificate: swap the two`);
  if (!isCertificate(cert)) throw new Error(`--cert ${certFile}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  if (!isPrivateKey(key)) {
    const what = isCertificate(key) ? "holds a certificate, not its private key" : "not a PEM private key (expected -----BEGIN PRIVATE KEY-----), or one with a passphrase";
    throw new Error(`--key ${keyFile}: ${what}`);
  }
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`--key ${keyFile} is not the key of the certificate in --cert ${certFile}`);
  }
  return { cert, key };
}
