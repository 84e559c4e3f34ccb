//! JWT bearer tokens for gateway routes: compact JWS with `HS256` (a shared secret) or `RS256`
//! (an RSA public key, PEM), keys from the gateway's config. A token is accepted when its
//! signature verifies with one of the route's keys, its `alg` matches that key (no `none`, no
//! algorithm confusion), `exp`/`nbf` hold (with leeway) and `iss`/`aud` match when configured.
//!
//! [`verify`] is pure: the caller passes the current Unix time.

use base64::Engine;
use ring::{hmac, signature};
use serde_json::Value;

/// A verification key.
#[derive(Debug, Clone, PartialEq)]
pub enum JwtKey {
    Hs256(Vec<u8>),
    /// DER `RSAPublicKey` (PKCS#1).
    Rs256(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JwtConfig {
    pub keys: Vec<JwtKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Why a token was refused (logged; the client only sees 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("unsupported or mismatched alg")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("wrong issuer or audience")]
    Claims,
}

fn b64(s: &str) -> Result<Vec<u8>, JwtError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)
}

/// Verifies `token` at Unix time `now`; returns its claims.
pub fn verify(token: &str, cfg: &JwtConfig, now: u64) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed)?;
    let sig = b64(s)?;
    let signed = &token[..h.len() + 1 + p.len()];
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let candidates: Vec<&JwtKey> = cfg
        .keys
        .iter()
        .filter(|k| {
            matches!(
                (k, alg),
                (JwtKey::Hs256(_), "HS256") | (JwtKey::Rs256(_), "RS256")
            )
        })
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::Algorithm);
    }
    let ok = candidates.iter().any(|k| match k {
        JwtKey::Hs256(secret) => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::verify(&key, signed.as_bytes(), &sig).is_ok()
        }
        JwtKey::Rs256(der) => {
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                .verify(signed.as_bytes(), &sig)
                .is_ok()
        }
    });
    if !ok {
        return Err(JwtError::Signature);
    }
    let num = |k: &str| claims.get(k).and_then(Value::as_u64);
    if num("exp").is_some_and(|exp| now > exp.saturating_add(cfg.leeway_secs)) {
        return Err(JwtError::Expired);
    }
    if num("nbf").is_some_and(|nbf| now.saturating_add(cfg.leeway_secs) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if let Some(iss) = &cfg.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(iss) {
            return Err(JwtError::Claims);
        }
    }
    if let Some(aud) = &cfg.audience {
        let matches = match claims.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        if !matches {
            return Err(JwtError::Claims);
        }
    }
    Ok(claims)
}

/// An RSA public key from PEM: `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo) or
/// `BEGIN RSA PUBLIC KEY` (PKCS#1), as the DER `RSAPublicKey` ring verifies with.
pub fn rsa_public_key_from_pem(pem: &str) -> Result<Vec<u8>, String> {
    let pkcs1 = pem.contains("BEGIN RSA PUBLIC KEY");
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("not PEM: {e}"))?;
    if pkcs1 {
        return Ok(der);
    }
    spki_to_pkcs1(&der).ok_or_else(|| "not an RSA SubjectPublicKeyInfo".to_string())
}

/// `SEQUENCE { SEQUENCE { algorithm }, BIT STRING { RSAPublicKey } }` → `RSAPublicKey`.
fn spki_to_pkcs1(der: &[u8]) -> Option<Vec<u8>> {
    // One DER element at `at`: (tag, content start, content end).
    fn element(der: &[u8], at: usize) -> Option<(u8, usize, usize)> {
        let tag = *der.get(at)?;
        let first = *der.get(at + 1)?;
        let (len, start) = if first < 0x80 {
            (usize::from(first), at + 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(*der.get(at + 2 + i)?);
            }
            (len, at + 2 + n)
        };
        let end = start.checked_add(len)?;
        (end <= der.len()).then_some((tag, start, end))
    }
    let (tag, outer_start, _) = element(der, 0)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _, alg_end) = element(der, outer_start)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, bits_start, bits_end) = element(der, alg_end)?;
    if tag != 0x03 || der.get(bits_start) != Some(&0) {
        return None;
    }
    Some(der[bits_start + 1..bits_end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_hs256(secret: &[u8], claims: &Value) -> String {
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let head = e(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = e(claims.to_string().as_bytes());
        let signed = format!("{head}.{body}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let sig = e(hmac::sign(&key, signed.as_bytes()).as_ref());
        format!("{signed}.{sig}")
    }

    fn cfg() -> JwtConfig {
        JwtConfig {
            keys: vec![JwtKey::Hs256(b"secret".to_vec())],
            issuer: Some("lotse".into()),
            audience: Some("api".into()),
            leeway_secs: 0,
        }
    }

    #[test]
    fn accepts_a_good_hs256_token() {
        let t = sign_hs256(
            b"secret",
            &serde_json::json!({"iss": "lotse", "aud": ["api"], "exp": 200, "sub": "ann"}),
        );
        let claims = verify(&t, &cfg(), 100).expect("valid");
        assert_eq!(claims["sub"], "ann");
    }

    #[test]
    fn refuses_bad_tokens() {
        let good = serde_json::json!({"iss": "lotse", "aud": "api", "exp": 200, "nbf": 50});
        let t = sign_hs256(b"other", &good);
        assert_eq!(verify(&t, &cfg(), 100), Err(JwtError::Signature));
        let t = sign_hs256(b"secret", &good);
        assert_eq!(verify(&t, &cfg(), 201), Err(JwtError::Expired));
        assert_eq!(verify(&t, &cfg(), 49), Err(JwtError::NotYetValid));
        let t = sign_hs256(b"secret", &serde_json::json!({"iss": "evil", "aud": "api"}));
        assert_eq!(verify(&t, &cfg(), 100), Err(JwtError::Claims));
        assert_eq!(verify("a.b", &cfg(), 100), Err(JwtError::Malformed));
        // alg none (or RS256 without an RSA key) is refused before any signature check.
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let none = format!("{}.{}.", e(br#"{"alg":"none"}"#), e(br#"{"iss":"lotse"}"#));
        assert_eq!(verify(&none, &cfg(), 100), Err(JwtError::Algorithm));
    }

    #[test]
    fn spki_unwraps_to_pkcs1() {
        // SEQUENCE { SEQUENCE { 06 01 2a }, BIT STRING { 00, 30 03 02 01 05 } }
        let der = [
            0x30, 0x0d, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x03, 0x06, 0x00, 0x30, 0x03, 0x02, 0x01,
            0x05,
        ];
        assert_eq!(
            spki_to_pkcs1(&der),
            Some(vec![0x30, 0x03, 0x02, 0x01, 0x05])
        );
        assert_eq!(spki_to_pkcs1(&der[..5]), None);
    }
}
