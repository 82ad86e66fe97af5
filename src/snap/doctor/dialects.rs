//! The dialects the doctor knows: the small ways SNAP signers differ from the
//! string this service verifies. Each has a stable identifier (stored on
//! refusals, used as a metric label, listed in docs/protocol.md) and a sentence a
//! developer can act on.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    SigningModeRsa,
    BodySpacedSeparators,
    BodyPrettyPrinted,
    BodyEscapedSlashes,
    BodyUnicodeEscaped,
    BodyHashUppercase,
    PathWithoutPrefix,
    PathWithPrefix,
    PathWithQuery,
    FullUrl,
    TimestampOtherForm,
    SignatureHex,
    SignatureBase64,
    MethodLowercase,
    TokenMissing,
    SecretSwapped,
    StaleToken,
}

impl Dialect {
    /// Every dialect, in the order explanations name them.
    pub const ALL: [Dialect; 17] = [
        Dialect::SigningModeRsa,
        Dialect::BodySpacedSeparators,
        Dialect::BodyPrettyPrinted,
        Dialect::BodyEscapedSlashes,
        Dialect::BodyUnicodeEscaped,
        Dialect::BodyHashUppercase,
        Dialect::PathWithoutPrefix,
        Dialect::PathWithPrefix,
        Dialect::PathWithQuery,
        Dialect::FullUrl,
        Dialect::TimestampOtherForm,
        Dialect::SignatureHex,
        Dialect::SignatureBase64,
        Dialect::MethodLowercase,
        Dialect::TokenMissing,
        Dialect::SecretSwapped,
        Dialect::StaleToken,
    ];

    /// The stable identifier.
    pub fn id(self) -> &'static str {
        match self {
            Dialect::SigningModeRsa => "signing-mode-rsa",
            Dialect::BodySpacedSeparators => "body-spaced-separators",
            Dialect::BodyPrettyPrinted => "body-pretty-printed",
            Dialect::BodyEscapedSlashes => "body-escaped-slashes",
            Dialect::BodyUnicodeEscaped => "body-unicode-escaped",
            Dialect::BodyHashUppercase => "body-hash-uppercase",
            Dialect::PathWithoutPrefix => "path-without-prefix",
            Dialect::PathWithPrefix => "path-with-prefix",
            Dialect::PathWithQuery => "path-with-query",
            Dialect::FullUrl => "full-url",
            Dialect::TimestampOtherForm => "timestamp-other-form",
            Dialect::SignatureHex => "signature-hex",
            Dialect::SignatureBase64 => "signature-base64",
            Dialect::MethodLowercase => "method-lowercase",
            Dialect::TokenMissing => "token-missing",
            Dialect::SecretSwapped => "secret-swapped",
            Dialect::StaleToken => "stale-token",
        }
    }

    pub fn from_id(id: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.id() == id)
    }

    /// What the signature was made over, completing "the signature matches …".
    pub fn phrase(self) -> &'static str {
        match self {
            Dialect::SigningModeRsa => {
                "an RSA signature with the key registered for Finpay (SNAP's asymmetric mode), where this service expects an HMAC"
            }
            Dialect::BodySpacedSeparators => {
                "the body re-serialized with `, ` and `: ` separators (Python's json.dumps default)"
            }
            Dialect::BodyPrettyPrinted => "the body pretty-printed (indented), hashed without removing that whitespace",
            Dialect::BodyEscapedSlashes => {
                "the body with its slashes written the other way (`\\/` for `/` as PHP's json_encode writes them, or the reverse)"
            }
            Dialect::BodyUnicodeEscaped => {
                "the body with its non-ASCII characters written the other way (`\\uXXXX` escapes for raw UTF-8, or the reverse)"
            }
            Dialect::BodyHashUppercase => "the body hash written in upper-case hex",
            Dialect::PathWithoutPrefix => "the path without the prefix it arrived with (a gateway prefix left out)",
            Dialect::PathWithPrefix => "the path with a gateway prefix (such as `/pg`) that did not arrive here",
            Dialect::PathWithQuery => "the path with its query string handled differently (kept or dropped)",
            Dialect::FullUrl => "the full URL (scheme and host) instead of the path",
            Dialect::TimestampOtherForm => "the same instant written in another form than the X-TIMESTAMP header",
            Dialect::SignatureHex => "a signature sent in hex where Base64 is expected",
            Dialect::SignatureBase64 => "a signature sent in Base64 where hex is expected",
            Dialect::MethodLowercase => "the HTTP method in lower case (`post`)",
            Dialect::TokenMissing => "a string to sign without the access token",
            Dialect::SecretSwapped => "another configured secret or key than the one for this direction",
            Dialect::StaleToken => "an earlier access token we issued, not the one in the Authorization header",
        }
    }

    /// What the sender should change.
    pub fn advice(self) -> &'static str {
        match self {
            Dialect::SigningModeRsa => {
                "agree on one mode: sign with the client secret (HMAC), or set INBOUND__SIGNATURE=asymmetric here"
            }
            Dialect::BodySpacedSeparators
            | Dialect::BodyPrettyPrinted
            | Dialect::BodyEscapedSlashes
            | Dialect::BodyUnicodeEscaped => {
                "sign the bytes you send: serialize the body once and hash exactly those bytes (minified)"
            }
            Dialect::BodyHashUppercase => "write the SHA-256 of the minified body in lower-case hex",
            Dialect::PathWithoutPrefix | Dialect::PathWithPrefix => {
                "sign the path as this service receives it (ask the merchant which path its gateway forwards)"
            }
            Dialect::PathWithQuery => "sign the path exactly as sent, with its query string if it has one",
            Dialect::FullUrl => "sign only the path after the host (and its query string), not the URL",
            Dialect::TimestampOtherForm => "sign the X-TIMESTAMP header's text byte for byte",
            Dialect::SignatureHex => "send the signature in standard Base64",
            Dialect::SignatureBase64 => "send the signature in lower-case hex (this service is set to expect hex)",
            Dialect::MethodLowercase => "write the method in upper case (`POST`)",
            Dialect::TokenMissing => "put the access token (without `Bearer `) between the path and the body hash",
            Dialect::SecretSwapped => "sign with the client secret or private key registered for this direction",
            Dialect::StaleToken => "sign with the same access token you send in the Authorization header",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
