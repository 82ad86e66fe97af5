//! RSA key loading and export for SNAP's `SHA256withRSA` signatures.
//!
//! Keys arrive from configuration in whatever shape the operator had at hand: PKCS#8
//! or PKCS#1, with stray whitespace, or squeezed into one env-var line with literal
//! `\n`. We accept those, refuse anything else with a message that says what was
//! expected, and enforce a minimum size so signing can never fail later at runtime.

use rand::rngs::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Our own signing keys: SNAP PJPs require RSA-2048 or larger.
const MIN_PRIVATE_BITS: usize = 2048;
/// A partner's key is out of our control; refuse only the clearly broken sizes.
const MIN_PUBLIC_BITS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM RSA private key (expected PKCS#8 'BEGIN PRIVATE KEY' or PKCS#1 'BEGIN RSA PRIVATE KEY')")]
    NotPrivateKeyPem,
    #[error("not a PEM RSA public key (expected SPKI 'BEGIN PUBLIC KEY' or PKCS#1 'BEGIN RSA PUBLIC KEY')")]
    NotPublicKeyPem,
    #[error("encrypted private keys are not supported; export it unencrypted (e.g. `openssl pkcs8 -topk8 -nocrypt`)")]
    Encrypted,
    #[error("malformed {format} key: {reason}")]
    Malformed { format: &'static str, reason: String },
    #[error("RSA key is {bits} bits; at least {min} bits are required")]
    TooSmall { bits: usize, min: usize },
}

/// Trims the value and turns literal `\n` (as written in env files) into newlines.
fn normalize(pem: &str) -> String {
    pem.trim().replace("\\r\\n", "\n").replace("\\n", "\n")
}

fn malformed(format: &'static str, reason: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        format,
        reason: reason.to_string(),
    }
}

fn check_size(bits: usize, min: usize) -> Result<(), KeyError> {
    if bits < min {
        return Err(KeyError::TooSmall { bits, min });
    }
    Ok(())
}

/// Parses an RSA private key in PKCS#8 or PKCS#1 PEM (at least 2048 bits).
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, KeyError> {
    let pem = normalize(pem);
    let key = if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| malformed("PKCS#8", e))?
    } else if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(&pem).map_err(|e| malformed("PKCS#1", e))?
    } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(KeyError::Encrypted);
    } else {
        return Err(KeyError::NotPrivateKeyPem);
    };
    // Reject inconsistent CRT parameters now rather than on the first signature.
    key.validate().map_err(|e| malformed("RSA", e))?;
    check_size(key.size() * 8, MIN_PRIVATE_BITS)?;
    Ok(key)
}

/// Parses an RSA public key in SPKI (X.509 `BEGIN PUBLIC KEY`) or PKCS#1 PEM.
pub fn parse_public_key(pem: &str) -> Result<RsaPublicKey, KeyError> {
    let pem = normalize(pem);
    let key = if pem.starts_with("-----BEGIN PUBLIC KEY-----") {
        RsaPublicKey::from_public_key_pem(&pem).map_err(|e| malformed("SPKI", e))?
    } else if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(&pem).map_err(|e| malformed("PKCS#1", e))?
    } else {
        return Err(KeyError::NotPublicKeyPem);
    };
    check_size(key.size() * 8, MIN_PUBLIC_BITS)?;
    Ok(key)
}

/// SPKI PEM with LF line endings: the "x.509 format" Finpay asks partners to send.
///
/// # Panics
/// Never for a key built by the `rsa` crate: DER-encoding two integers cannot fail.
pub fn public_key_pem(key: &RsaPublicKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("encoding an RSA public key as SPKI cannot fail")
}

/// PKCS#8 PEM with LF line endings (for writing a freshly generated key).
///
/// # Panics
/// Never for a key built by the `rsa` crate: DER-encoding its integers cannot fail.
pub fn private_key_pem(key: &RsaPrivateKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.as_str().to_owned())
        .expect("encoding an RSA private key as PKCS#8 cannot fail")
}

/// A fresh RSA-2048 key from the operating system's RNG.
///
/// # Panics
/// Only if the OS RNG fails, in which case no key could be made safely anyway.
pub fn generate_private_key() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut OsRng, MIN_PRIVATE_BITS).expect("RSA-2048 key generation failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snap::signature::{rsa_sign, rsa_verify};
    use crate::snap::test_vectors::{TEST_PRIVATE_KEY_PEM, TEST_PUBLIC_KEY_PEM};
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};

    fn test_key() -> RsaPrivateKey {
        parse_private_key(TEST_PRIVATE_KEY_PEM).unwrap()
    }

    #[test]
    fn pkcs8_test_key_and_its_spki_public_key_match() {
        let public = parse_public_key(TEST_PUBLIC_KEY_PEM).unwrap();
        assert_eq!(test_key().to_public_key(), public);
        assert_eq!(public.size() * 8, 2048);
    }

    #[test]
    fn pkcs1_private_key_is_accepted() {
        let pkcs1 = test_key().to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(parse_private_key(&pkcs1).unwrap(), test_key());
    }

    #[test]
    fn pkcs1_public_key_is_accepted() {
        let public = test_key().to_public_key();
        let pkcs1 = public.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        assert_eq!(parse_public_key(&pkcs1).unwrap(), public);
    }

    #[test]
    fn env_var_style_escaped_newlines_and_surrounding_whitespace_are_tolerated() {
        let one_line = TEST_PRIVATE_KEY_PEM.trim().replace('\n', "\\n");
        assert_eq!(parse_private_key(&format!("  {one_line}\n\n")).unwrap(), test_key());
        let crlf = TEST_PUBLIC_KEY_PEM.replace('\n', "\r\n");
        assert!(parse_public_key(&format!("\n{crlf}")).is_ok());
        let escaped_crlf = TEST_PUBLIC_KEY_PEM.trim().replace('\n', "\\r\\n");
        assert!(parse_public_key(&escaped_crlf).is_ok());
    }

    #[test]
    fn wrong_kinds_of_input_get_clear_errors() {
        let err = parse_private_key(TEST_PUBLIC_KEY_PEM).unwrap_err();
        assert!(err.to_string().contains("expected PKCS#8 'BEGIN PRIVATE KEY'"), "{err}");
        let err = parse_public_key(TEST_PRIVATE_KEY_PEM).unwrap_err();
        assert!(err.to_string().contains("expected SPKI 'BEGIN PUBLIC KEY'"), "{err}");
        assert!(matches!(parse_private_key(""), Err(KeyError::NotPrivateKeyPem)));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        assert!(matches!(parse_private_key(encrypted), Err(KeyError::Encrypted)));
        let truncated = &TEST_PRIVATE_KEY_PEM[..400];
        assert!(matches!(parse_private_key(truncated), Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn exported_pems_round_trip() {
        let key = test_key();
        let public_pem = public_key_pem(&key.to_public_key());
        assert_eq!(public_pem, TEST_PUBLIC_KEY_PEM);
        assert_eq!(parse_private_key(&private_key_pem(&key)).unwrap(), key);
    }

    #[test]
    fn generated_key_is_2048_bits_and_signs() {
        let key = generate_private_key();
        assert_eq!(key.size() * 8, 2048);
        let sig = rsa_sign(&key, "hello");
        assert!(rsa_verify(&key.to_public_key(), "hello", &sig));
    }

    #[test]
    fn keys_below_the_minimum_size_are_refused() {
        let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let pem = private_key_pem(&small);
        assert!(matches!(
            parse_private_key(&pem),
            Err(KeyError::TooSmall { bits: 1024, min: 2048 })
        ));
        // Partners' public keys only need 1024 bits.
        assert!(parse_public_key(&public_key_pem(&small.to_public_key())).is_ok());
    }
}
