//! Following redirects as Go's `http.Client` does (Consul uses its default policy unless
//! `disable_redirects`): 301/302/303/307/308 with a `Location` are followed; 301/302/303
//! turn a non-GET/HEAD request into a body-less GET, 307/308 keep method and body; the
//! check's headers are copied, minus credentials when the host changes; the 10th redirect
//! is an error.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode, Uri};

/// Go's limit: the request that would follow the 10th redirect is refused.
pub(super) const MAX_REDIRECTS: usize = 10;

/// One request of the chain.
#[derive(Debug, Clone)]
pub(super) struct Hop {
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) body: Bytes,
    /// `Host` override; Go applies it to the first request only.
    pub(super) host: Option<String>,
    pub(super) headers: HeaderMap,
}

/// The request to send after `response`, or `None` when `response` is final.
pub(super) fn next_hop<B>(hop: &Hop, response: &Response<B>) -> Result<Option<Hop>, String> {
    let keep_method = match response.status() {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER => false,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => true,
        _ => return Ok(None),
    };
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| "failed to parse Location header: not valid text".to_owned())?;
    let base: Uri = hop
        .url
        .parse()
        .map_err(|e| format!("parse {:?}: {e}", hop.url))?;
    let url = resolve(&base, location);
    let next: Uri = url
        .parse()
        .map_err(|e| format!("failed to parse Location header {location:?}: {e}"))?;

    let mut headers = hop.headers.clone();
    if next.host() != base.host() {
        for name in [
            header::AUTHORIZATION,
            header::WWW_AUTHENTICATE,
            header::COOKIE,
        ] {
            headers.remove(name);
        }
    }
    let (method, body) = if keep_method || hop.method == Method::GET || hop.method == Method::HEAD {
        (
            hop.method.clone(),
            if keep_method {
                hop.body.clone()
            } else {
                Bytes::new()
            },
        )
    } else {
        (Method::GET, Bytes::new())
    };
    Ok(Some(Hop {
        method,
        url,
        body,
        host: None,
        headers,
    }))
}

/// Resolves a `Location` against the URL it came from (RFC 3986 §5.2, without dot-segment
/// removal: servers normalise their own paths). The fragment is dropped.
pub(super) fn resolve(base: &Uri, location: &str) -> String {
    let location = location.split('#').next().unwrap_or_default();
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if has_scheme(location) {
        return location.to_owned();
    }
    if location.starts_with("//") {
        return format!("{scheme}:{location}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    if location.is_empty() {
        let query = base.query().map(|q| format!("?{q}")).unwrap_or_default();
        return format!("{scheme}://{authority}{path}{query}");
    }
    if location.starts_with('?') {
        return format!("{scheme}://{authority}{path}{location}");
    }
    let dir = path.rsplit_once('/').map_or("/", |(dir, _)| dir);
    let dir = dir.trim_end_matches('/');
    format!("{scheme}://{authority}{dir}/{location}")
}

/// `scheme:` per RFC 3986: a letter, then letters, digits, `+`, `-`, `.`.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base: Uri = "http://a.test:8080/x/y?q=1".parse().unwrap();
        let cases = [
            ("https://b.test/z", "https://b.test/z"),
            ("//c.test/p", "http://c.test/p"),
            ("/abs?k=v", "http://a.test:8080/abs?k=v"),
            ("rel", "http://a.test:8080/x/rel"),
            ("?q=2", "http://a.test:8080/x/y?q=2"),
            ("/frag#top", "http://a.test:8080/frag"),
        ];
        for (loc, want) in cases {
            assert_eq!(resolve(&base, loc), want, "{loc}");
        }
    }

    fn hop(method: Method) -> Hop {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "secret".parse().unwrap());
        Hop {
            method,
            url: "http://a.test/start".into(),
            body: Bytes::from_static(b"payload"),
            host: Some("override".into()),
            headers,
        }
    }

    fn redirect(code: u16, location: &str) -> Response<()> {
        Response::builder()
            .status(code)
            .header("location", location)
            .body(())
            .unwrap()
    }

    #[test]
    fn see_other_turns_post_into_get_and_307_keeps_it() {
        let next = next_hop(&hop(Method::POST), &redirect(303, "/next"))
            .unwrap()
            .unwrap();
        assert_eq!((next.method, next.body.len()), (Method::GET, 0));
        assert_eq!(next.url, "http://a.test/next");
        assert_eq!(next.host, None);
        assert!(next.headers.contains_key(header::AUTHORIZATION));

        let next = next_hop(&hop(Method::POST), &redirect(307, "/next"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.method, &next.body[..]),
            (Method::POST, &b"payload"[..])
        );
    }

    #[test]
    fn credentials_stay_behind_on_another_host_and_non_redirects_end_the_chain() {
        let next = next_hop(&hop(Method::GET), &redirect(302, "http://b.test/"))
            .unwrap()
            .unwrap();
        assert!(!next.headers.contains_key(header::AUTHORIZATION));
        let ok = Response::builder().status(200).body(()).unwrap();
        assert!(next_hop(&hop(Method::GET), &ok).unwrap().is_none());
        let no_location = Response::builder().status(302).body(()).unwrap();
        assert!(next_hop(&hop(Method::GET), &no_location).unwrap().is_none());
    }
}
