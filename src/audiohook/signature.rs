//! HTTP Message Signatures (draft-ietf-httpbis-message-signatures-11, RFC 9421) as
//! Genesys signs AudioHook upgrades: parsing, the signature base, the policy of
//! Genesys' reference verifier, and signing. No tower, no clock of its own.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sfv::{BareItem, Dictionary, FieldType, ListEntry, Parser};

use crate::signature::hmac_sha256;

/// The components Genesys covers, and that a signature must cover.
pub const REQUIRED_COMPONENTS: &[&str] = &[
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
];

/// The only algorithm Genesys uses.
pub const ALGORITHM: &str = "hmac-sha256";

/// Why a signed upgrade was refused. Never holds a secret or a computed signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// No `X-API-KEY` header.
    MissingApiKey,
    /// No signature, for an API key that has a client secret.
    Unsigned,
    /// `Signature` or `Signature-Input` is not a valid structured field, or not of
    /// the shape the protocol uses.
    Malformed(Malformed),
    /// More than one signature.
    MultipleSignatures,
    /// A parameter other than `alg`, `created`, `expires`, `keyid` and `nonce`.
    UnknownParameter(String),
    /// An algorithm other than `hmac-sha256`.
    UnsupportedAlgorithm(String),
    /// `keyid` is not the `X-API-KEY`.
    KeyIdMismatch,
    /// No `nonce`, or one shorter than the minimum.
    ShortNonce,
    /// No `created` parameter.
    MissingCreated,
    /// `created` is further in the future than the clock skew allows.
    CreatedInFuture,
    /// `expires` is past (or within the clock skew).
    Expired,
    /// The signature is older than the maximum age.
    TooOld,
    /// A required component is not covered.
    MissingComponent(String),
    /// A covered component cannot be resolved or is not supported.
    UnresolvableComponent(String),
    /// The API key is not configured.
    UnknownKey,
    /// The signature does not match.
    Mismatch,
    /// The nonce was used before, within the signature's lifetime.
    ReplayedNonce,
}

impl Failure {
    /// The status a refusal is answered with: `401 Unauthorized` for every failure (the
    /// reference gives no detail; Genesys does not retry it).
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNAUTHORIZED
    }

    /// A short code naming the failure, for logs and metrics (never sent to the peer).
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::Unsigned => "unsigned",
            Self::Malformed(_) => "malformed_signature",
            Self::MultipleSignatures => "multiple_signatures",
            Self::UnknownParameter(_) => "unknown_parameter",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::KeyIdMismatch => "keyid_mismatch",
            Self::ShortNonce => "short_nonce",
            Self::MissingCreated => "missing_created",
            Self::CreatedInFuture => "created_in_future",
            Self::Expired => "expired",
            Self::TooOld => "too_old",
            Self::MissingComponent(_) => "missing_component",
            Self::UnresolvableComponent(_) => "unresolvable_component",
            Self::UnknownKey => "unknown_key",
            Self::Mismatch => "signature_mismatch",
            Self::ReplayedNonce => "replayed_nonce",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingApiKey => f.write_str("no X-API-KEY header"),
            Self::Unsigned => {
                f.write_str("unsigned request for an API key that has a client secret")
            }
            Self::Malformed(why) => write!(f, "malformed signature headers: {why}"),
            Self::MultipleSignatures => f.write_str("more than one signature"),
            Self::UnknownParameter(name) => {
                write!(f, "signature parameter {name:?} is not allowed")
            }
            Self::UnsupportedAlgorithm(alg) => write!(f, "algorithm {alg:?} is not hmac-sha256"),
            Self::KeyIdMismatch => f.write_str("keyid is not the X-API-KEY"),
            Self::ShortNonce => f.write_str("nonce missing or too short"),
            Self::MissingCreated => f.write_str("no created parameter"),
            Self::CreatedInFuture => f.write_str("created is in the future"),
            Self::Expired => f.write_str("the signature has expired"),
            Self::TooOld => f.write_str("the signature is older than the maximum age"),
            Self::MissingComponent(name) => write!(f, "component {name:?} is not covered"),
            Self::UnresolvableComponent(name) => {
                write!(f, "component {name:?} cannot be resolved")
            }
            Self::UnknownKey => f.write_str("unknown API key"),
            Self::Mismatch => f.write_str("the signature does not match"),
            Self::ReplayedNonce => f.write_str("the nonce was used before"),
        }
    }
}

impl std::error::Error for Failure {}

/// The parameters of a signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Parameters {
    /// `alg`.
    pub alg: Option<String>,
    /// `created`, Unix seconds.
    pub created: Option<i64>,
    /// `expires`, Unix seconds.
    pub expires: Option<i64>,
    /// `keyid`.
    pub keyid: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
}

/// A parsed `Signature-Input` / `Signature` pair with one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureInput {
    /// The signature's label (`sig1`).
    pub label: String,
    /// The covered components, in order.
    pub components: Vec<String>,
    /// Its parameters.
    pub parameters: Parameters,
    /// The inner list with its parameters exactly as received, for
    /// `@signature-params`.
    pub signature_params: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// What is wrong with malformed signature headers ([`Failure::Malformed`]), or with
/// what [`sign`] was given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A header is not an RFC 8941 dictionary.
    NotADictionary {
        /// `Signature-Input` or `Signature`.
        header: &'static str,
    },
    /// Only one of `Signature` and `Signature-Input` is present.
    Unpaired,
    /// `Signature-Input` holds no member.
    EmptyInput,
    /// No `Signature` member has the label of the `Signature-Input` member.
    LabelMismatch,
    /// The signature is not a byte sequence.
    NotByteSequence,
    /// The `Signature-Input` member is not an inner list.
    NotInnerList,
    /// `Signature-Input` is not written as RFC 8941 serializes it, so the bytes signed
    /// as `@signature-params` could differ from the bytes received.
    NotCanonical,
    /// A covered component is not a string.
    ComponentNotString,
    /// A component is listed twice.
    DuplicateComponent(String),
    /// A parameter is not of its type (`created` and `expires` are non-negative
    /// integers, the others strings).
    ParameterType(String),
    /// The client secret given to [`sign`] is not base64.
    ClientSecretNotBase64,
    /// A value given to [`sign`] cannot be written as a structured field.
    Unserializable,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotADictionary { header } => {
                write!(f, "{header} is not a structured-field dictionary")
            }
            Self::Unpaired => f.write_str("Signature and Signature-Input go together"),
            Self::EmptyInput => f.write_str("Signature-Input is empty"),
            Self::LabelMismatch => f.write_str("no signature with the label of Signature-Input"),
            Self::NotByteSequence => f.write_str("the signature is not a byte sequence"),
            Self::NotInnerList => f.write_str("Signature-Input's member is not an inner list"),
            Self::NotCanonical => f.write_str("Signature-Input is not in canonical form"),
            Self::ComponentNotString => f.write_str("a covered component is not a string"),
            Self::DuplicateComponent(name) => write!(f, "component {name:?} is listed twice"),
            Self::ParameterType(name) => write!(f, "parameter {name} is not of its type"),
            Self::ClientSecretNotBase64 => f.write_str("the client secret is not base64"),
            Self::Unserializable => f.write_str("a value cannot be a structured field"),
        }
    }
}

fn malformed(why: Malformed) -> Failure {
    Failure::Malformed(why)
}

/// Parses both headers as RFC 8941 dictionaries. Each must hold exactly one member with
/// the same label, and `Signature-Input` must be canonical (written as RFC 8941
/// serializes it), so that the bytes signed as `@signature-params` are the bytes
/// received.
///
/// # Errors
///
/// A [`Failure`] saying what is wrong.
pub fn parse(signature_input: &str, signature: &str) -> Result<SignatureInput, Failure> {
    let inputs: Dictionary = Parser::new(signature_input.trim()).parse().map_err(|_| {
        malformed(Malformed::NotADictionary {
            header: "Signature-Input",
        })
    })?;
    let signatures: Dictionary = Parser::new(signature.trim()).parse().map_err(|_| {
        malformed(Malformed::NotADictionary {
            header: "Signature",
        })
    })?;
    if inputs.len() > 1 || signatures.len() > 1 {
        return Err(Failure::MultipleSignatures);
    }
    let Some((label, entry)) = inputs.iter().next() else {
        return Err(malformed(Malformed::EmptyInput));
    };
    let Some(ListEntry::Item(sig_item)) = signatures.get(label.as_str()) else {
        return Err(malformed(Malformed::LabelMismatch));
    };
    let BareItem::ByteSequence(signature_bytes) = &sig_item.bare_item else {
        return Err(malformed(Malformed::NotByteSequence));
    };
    let ListEntry::InnerList(list) = entry else {
        return Err(malformed(Malformed::NotInnerList));
    };
    let canonical = inputs
        .serialize()
        .ok_or_else(|| malformed(Malformed::Unserializable))?;
    if canonical != signature_input.trim() {
        return Err(malformed(Malformed::NotCanonical));
    }
    let signature_params = canonical[label.as_str().len() + 1..].to_owned();

    let mut components = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let BareItem::String(name) = &item.bare_item else {
            return Err(malformed(Malformed::ComponentNotString));
        };
        if !item.params.is_empty() {
            return Err(Failure::UnresolvableComponent(name.as_str().to_owned()));
        }
        let name = name.as_str().to_owned();
        if components.contains(&name) {
            return Err(malformed(Malformed::DuplicateComponent(name)));
        }
        components.push(name);
    }

    let mut parameters = Parameters::default();
    for (key, value) in &list.params {
        let text = || match value {
            BareItem::String(s) => Ok(s.as_str().to_owned()),
            _ => Err(malformed(Malformed::ParameterType(key.as_str().to_owned()))),
        };
        let integer = || match value {
            BareItem::Integer(n) if i64::from(*n) >= 0 => Ok(i64::from(*n)),
            _ => Err(malformed(Malformed::ParameterType(key.as_str().to_owned()))),
        };
        match key.as_str() {
            "alg" => parameters.alg = Some(text()?),
            "created" => parameters.created = Some(integer()?),
            "expires" => parameters.expires = Some(integer()?),
            "keyid" => parameters.keyid = Some(text()?),
            "nonce" => parameters.nonce = Some(text()?),
            other => return Err(Failure::UnknownParameter(other.to_owned())),
        }
    }
    Ok(SignatureInput {
        label: label.as_str().to_owned(),
        components,
        parameters,
        signature_params,
        signature: signature_bytes.clone(),
    })
}

/// A client secret as Genesys Cloud shows it, base64 with or without its `=` padding
/// (Genesys' reference client accepts both); `None` when it is not base64 or empty.
pub fn decode_client_secret(client_secret_base64: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const INDIFFERENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    INDIFFERENT
        .decode(client_secret_base64.trim())
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

/// The policy of Genesys' reference verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// The oldest a signature may be, from `created` (default 10 s). As in the reference
    /// verifier, the clock skew is taken off it: with the defaults a signature is
    /// refused once it is more than 7 s old.
    pub max_age: Duration,
    /// How far the sender's clock may be ahead or behind (default 3 s).
    pub clock_skew: Duration,
    /// The shortest nonce accepted (default 22 characters).
    pub min_nonce_len: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(10),
            clock_skew: Duration::from_secs(3),
            min_nonce_len: 22,
        }
    }
}

impl Policy {
    /// Checks the parameters against the API key and the time `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn check(&self, parameters: &Parameters, api_key: &str, now: i64) -> Result<(), Failure> {
        if let Some(alg) = &parameters.alg {
            if alg != ALGORITHM {
                return Err(Failure::UnsupportedAlgorithm(alg.clone()));
            }
        }
        if parameters.keyid.as_deref() != Some(api_key) {
            return Err(Failure::KeyIdMismatch);
        }
        match &parameters.nonce {
            Some(nonce) if nonce.chars().count() >= self.min_nonce_len => {}
            _ => return Err(Failure::ShortNonce),
        }
        let skew = secs(self.clock_skew);
        let Some(created) = parameters.created else {
            return Err(Failure::MissingCreated);
        };
        if created > now.saturating_add(skew) {
            return Err(Failure::CreatedInFuture);
        }
        if let Some(expires) = parameters.expires {
            if expires < now.saturating_add(skew) {
                return Err(Failure::Expired);
            }
        }
        if created.saturating_add(secs(self.max_age)) < now.saturating_add(skew) {
            return Err(Failure::TooOld);
        }
        Ok(())
    }

    /// How long a nonce must be remembered: until no signature made at `created`
    /// could still be accepted.
    pub fn nonce_lifetime(&self, created: i64, now: i64) -> Duration {
        let until = created
            .saturating_add(secs(self.max_age))
            .saturating_add(secs(self.clock_skew));
        Duration::from_secs(u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1))
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Builds the signature base: one line `"name": value` per covered component, then
/// `"@signature-params": <params>`, joined by `\n`. `resolve` gives a component's
/// value (derived components start with `@`); every one of [`REQUIRED_COMPONENTS`]
/// must be covered.
///
/// # Errors
///
/// A required component is missing, or a covered one cannot be resolved.
pub fn signature_base(
    components: &[String],
    signature_params: &str,
    resolve: impl Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    for &required in REQUIRED_COMPONENTS {
        if !components.iter().any(|c| c == required) {
            return Err(Failure::MissingComponent(required.to_owned()));
        }
    }
    let mut base = String::new();
    for name in components {
        if name == "@signature-params" {
            return Err(Failure::UnresolvableComponent(name.clone()));
        }
        let value = resolve(name).ok_or_else(|| Failure::UnresolvableComponent(name.clone()))?;
        if value.contains('\n') || value.contains('\r') {
            return Err(Failure::UnresolvableComponent(name.clone()));
        }
        base.push('"');
        base.push_str(name);
        base.push_str("\": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(signature_params);
    Ok(base)
}

/// HMAC-SHA256 of `base` under `key` (the base64-decoded client secret).
pub fn compute(key: &[u8], base: &str) -> [u8; 32] {
    hmac_sha256(key, base.as_bytes())
}

/// What a Genesys-like client signs: the request and the session's identifiers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SigningInput<'a> {
    /// The path and query of the upgrade request (`@request-target`).
    pub request_target: &'a str,
    /// The `Host` (`@authority`).
    pub authority: &'a str,
    /// `Audiohook-Organization-Id`.
    pub organization_id: &'a str,
    /// `Audiohook-Session-Id`.
    pub session_id: &'a str,
    /// `Audiohook-Correlation-Id`.
    pub correlation_id: &'a str,
    /// `X-API-KEY`, also the `keyid`.
    pub api_key: &'a str,
    /// `created`, Unix seconds.
    pub created: i64,
    /// `expires`, Unix seconds.
    pub expires: i64,
    /// At least 22 characters, never reused.
    pub nonce: &'a str,
}

impl<'a> SigningInput<'a> {
    /// What to sign for `api_key`: the request's path and query and its authority, a
    /// nonce, and the validity window in Unix seconds. The session's identifiers are
    /// set with [`ids`](Self::ids).
    pub fn new(
        request_target: &'a str,
        authority: &'a str,
        api_key: &'a str,
        nonce: &'a str,
        created: i64,
        expires: i64,
    ) -> Self {
        Self {
            request_target,
            authority,
            organization_id: "",
            session_id: "",
            correlation_id: "",
            api_key,
            created,
            expires,
            nonce,
        }
    }

    /// The organization, session and correlation ids the upgrade carries.
    pub fn ids(
        mut self,
        organization_id: &'a str,
        session_id: &'a str,
        correlation_id: &'a str,
    ) -> Self {
        self.organization_id = organization_id;
        self.session_id = session_id;
        self.correlation_id = correlation_id;
        self
    }
}

/// The identifiers [`sign_upgrade`] put on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeIds {
    /// `Audiohook-Organization-Id`.
    pub organization_id: String,
    /// `Audiohook-Session-Id`: the session's `id` in every message.
    pub session_id: String,
    /// `Audiohook-Correlation-Id`.
    pub correlation_id: String,
}

/// How long a signature made by [`sign_upgrade`] is valid: as Genesys' reference client.
const SIGNATURE_LIFETIME: i64 = 60;

/// Makes `request` an AudioHook upgrade as Genesys Cloud sends it: `X-API-KEY`, the
/// organization, session and correlation ids (fresh version 4 UUIDs unless the request
/// already carries them), and, with a client secret (base64 as Genesys shows it), the
/// `Signature-Input` and `Signature` of RFC 9421 over them, created at `now` with a
/// fresh nonce. The counterpart of the webhook side's
/// [`signed_request`](crate::signature::signed_request), for simulators and tests.
///
/// ```
/// use std::time::SystemTime;
/// use genesys_webhook::audiohook::signature::sign_upgrade;
///
/// let mut request = http::Request::get("ws://127.0.0.1:5001/audiohook/ws").body(())?;
/// let ids = sign_upgrade(&mut request, "api-key", Some("c2VjcmV0LXNlY3JldC1zZWNyZXQ="), SystemTime::now())?;
/// assert_eq!(request.headers()["audiohook-session-id"], ids.session_id.as_str());
/// assert!(request.headers()["signature-input"].to_str()?.contains(r#"keyid="api-key""#));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Failure::Malformed`]: the client secret is not base64, or a value (the API key,
/// an id) cannot be a header value or a structured-field string.
pub fn sign_upgrade<B>(
    request: &mut http::Request<B>,
    api_key: &str,
    client_secret_base64: Option<&str>,
    now: std::time::SystemTime,
) -> Result<UpgradeIds, Failure> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .or_else(|| {
            let host = request.headers().get(http::header::HOST)?;
            host.to_str().ok().map(str::to_ascii_lowercase)
        })
        .unwrap_or_default();
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let headers = request.headers_mut();
    let mut id = |name: &'static str| -> Result<String, Failure> {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return Ok(value.to_owned());
        }
        let fresh = crate::random::uuid_v4();
        put(headers, name, &fresh)?;
        Ok(fresh)
    };
    let ids = UpgradeIds {
        organization_id: id("audiohook-organization-id")?,
        session_id: id("audiohook-session-id")?,
        correlation_id: id("audiohook-correlation-id")?,
    };
    put(headers, "x-api-key", api_key)?;
    if let Some(secret) = client_secret_base64 {
        let created = now
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let nonce =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random::bytes::<24>());
        let input = SigningInput::new(
            &target,
            &authority,
            api_key,
            &nonce,
            created,
            created + SIGNATURE_LIFETIME,
        )
        .ids(&ids.organization_id, &ids.session_id, &ids.correlation_id);
        let (signature_input, signature) = sign(&input, secret)?;
        put(headers, "signature-input", &signature_input)?;
        put(headers, "signature", &signature)?;
    }
    Ok(ids)
}

fn put(headers: &mut http::HeaderMap, name: &'static str, value: &str) -> Result<(), Failure> {
    let value =
        http::HeaderValue::from_str(value).map_err(|_| malformed(Malformed::Unserializable))?;
    headers.insert(name, value);
    Ok(())
}

/// The `Signature-Input` and `Signature` header values for `input`, signed with the
/// base64 client secret as Genesys does (for simulators and tests).
///
/// # Errors
///
/// The client secret is not base64, or a value cannot be a structured-field string.
pub fn sign(
    input: &SigningInput<'_>,
    client_secret_base64: &str,
) -> Result<(String, String), Failure> {
    let key = decode_client_secret(client_secret_base64)
        .ok_or_else(|| malformed(Malformed::ClientSecretNotBase64))?;
    let string = |s: &str| {
        sfv::String::from_string(s.to_owned())
            .map(BareItem::String)
            .map_err(|_| malformed(Malformed::Unserializable))
    };
    let key_name = |k: &str| {
        sfv::Key::from_string(k.to_owned()).map_err(|_| malformed(Malformed::Unserializable))
    };
    let items = REQUIRED_COMPONENTS
        .iter()
        .map(|c| string(c).map(sfv::Item::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = sfv::Parameters::new();
    params.insert(key_name("keyid")?, string(input.api_key)?);
    params.insert(key_name("nonce")?, string(input.nonce)?);
    params.insert(key_name("alg")?, string(ALGORITHM)?);
    params.insert(
        key_name("created")?,
        BareItem::Integer(
            sfv::Integer::try_from(input.created)
                .map_err(|_| malformed(Malformed::Unserializable))?,
        ),
    );
    params.insert(
        key_name("expires")?,
        BareItem::Integer(
            sfv::Integer::try_from(input.expires)
                .map_err(|_| malformed(Malformed::Unserializable))?,
        ),
    );
    let mut dictionary = Dictionary::new();
    dictionary.insert(
        key_name("sig1")?,
        ListEntry::InnerList(sfv::InnerList::with_params(items, params)),
    );
    let signature_input = dictionary
        .serialize()
        .ok_or_else(|| malformed(Malformed::Unserializable))?;
    let signature_params = &signature_input["sig1=".len()..];
    let components: Vec<String> = REQUIRED_COMPONENTS
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let base = signature_base(&components, signature_params, |name| {
        Some(
            match name {
                "@request-target" => input.request_target,
                "@authority" => input.authority,
                "audiohook-organization-id" => input.organization_id,
                "audiohook-session-id" => input.session_id,
                "audiohook-correlation-id" => input.correlation_id,
                "x-api-key" => input.api_key,
                _ => return None,
            }
            .to_owned(),
        )
    })?;
    let signature = compute(&key, &base);
    Ok((
        signature_input,
        format!("sig1=:{}:", STANDARD.encode(signature)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published vector of Genesys' AudioHook reference implementation.
    const API_KEY: &str = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";
    const SECRET: &str = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=";
    const INPUT: &str = r#"sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430"#;
    const SIGNATURE: &str = "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:";

    fn resolve(host_as: &'static str) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            Some(
                match name {
                    "@request-target" => "/api/v1/voicebiometrics/ws",
                    n if n == host_as => "audiohook.example.com",
                    "audiohook-organization-id" => "d7934305-0972-4844-938e-9060eef73d05",
                    "audiohook-session-id" => "30b0e395-84d3-4570-ac13-9a62d8f514c0",
                    "audiohook-correlation-id" => "e160e428-53e2-487c-977d-96989bf5c99d",
                    "x-api-key" => API_KEY,
                    _ => return None,
                }
                .to_owned(),
            )
        }
    }

    #[test]
    fn the_published_vector_verifies() {
        let parsed = parse(INPUT, SIGNATURE).unwrap();
        assert_eq!(parsed.signature_params, &INPUT["sig1=".len()..]);
        let base = signature_base(
            &parsed.components,
            &parsed.signature_params,
            resolve("@authority"),
        )
        .unwrap();
        assert_eq!(base.lines().count(), 7);
        let key = STANDARD.decode(SECRET).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(compute(&key, &base).to_vec(), parsed.signature);
        Policy::default()
            .check(&parsed.parameters, API_KEY, 1_641_013_205)
            .unwrap();
    }

    #[test]
    fn the_host_variant_reproduces_its_published_signature() {
        let input = INPUT.replace("\"@authority\"", "\"host\"");
        let parsed = parse(&input, SIGNATURE).unwrap();
        // "host" instead of "@authority": not every required component is covered,
        // but the base itself is the published one.
        let mut base = String::new();
        for name in &parsed.components {
            base.push_str(&format!("\"{name}\": {}\n", resolve("host")(name).unwrap()));
        }
        base.push_str(&format!(
            "\"@signature-params\": {}",
            parsed.signature_params
        ));
        let key = STANDARD.decode(SECRET).unwrap();
        assert_eq!(
            STANDARD.encode(compute(&key, &base)),
            "zupMJUMfd/kMuvKc5zhRyfJPE3jTROuz1S1hn8SCTpE="
        );
        assert!(matches!(
            signature_base(
                &parsed.components,
                &parsed.signature_params,
                resolve("host")
            ),
            Err(Failure::MissingComponent(_))
        ));
    }

    #[test]
    fn the_rfc_drafts_hmac_example_reproduces() {
        // draft-ietf-httpbis-message-signatures-11, appendix B.2.5.
        let input = r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#;
        let signature = "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:";
        let parsed = parse(input, signature).unwrap();
        let mut base = String::new();
        for name in &parsed.components {
            let value = match name.as_str() {
                "date" => "Tue, 20 Apr 2021 02:07:55 GMT",
                "@authority" => "example.com",
                "content-type" => "application/json",
                _ => unreachable!(),
            };
            base.push_str(&format!("\"{name}\": {value}\n"));
        }
        base.push_str(&format!(
            "\"@signature-params\": {}",
            parsed.signature_params
        ));
        let key = STANDARD
            .decode("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")
            .unwrap();
        assert_eq!(compute(&key, &base).to_vec(), parsed.signature);
    }

    #[test]
    fn signing_reproduces_the_published_vector() {
        let (input, signature) = sign(
            &SigningInput {
                request_target: "/api/v1/voicebiometrics/ws",
                authority: "audiohook.example.com",
                organization_id: "d7934305-0972-4844-938e-9060eef73d05",
                session_id: "30b0e395-84d3-4570-ac13-9a62d8f514c0",
                correlation_id: "e160e428-53e2-487c-977d-96989bf5c99d",
                api_key: API_KEY,
                created: 1_641_013_200,
                expires: 3_282_026_430,
                nonce: "VGhpc0lzQVVuaXF1ZU5vbmNl",
            },
            SECRET,
        )
        .unwrap();
        assert_eq!(input, INPUT);
        assert_eq!(signature, SIGNATURE);
    }

    #[test]
    fn the_policy_follows_the_reference_verifier() {
        let parsed = parse(INPUT, SIGNATURE).unwrap();
        let p = Policy::default();
        let check = |now| p.check(&parsed.parameters, API_KEY, now);
        assert_eq!(check(1_641_013_200 - 4), Err(Failure::CreatedInFuture));
        assert!(check(1_641_013_200 - 3).is_ok());
        assert!(check(1_641_013_207).is_ok());
        assert_eq!(check(1_641_013_208), Err(Failure::TooOld));
        assert_eq!(
            p.check(&parsed.parameters, "other", 1_641_013_201),
            Err(Failure::KeyIdMismatch)
        );
        let mut short = parsed.parameters.clone();
        short.nonce = Some("too-short".into());
        assert_eq!(
            p.check(&short, API_KEY, 1_641_013_201),
            Err(Failure::ShortNonce)
        );
        let mut expired = parsed.parameters.clone();
        expired.expires = Some(1_641_013_202);
        assert_eq!(
            p.check(&expired, API_KEY, 1_641_013_201),
            Err(Failure::Expired)
        );
        let mut alg = parsed.parameters.clone();
        alg.alg = Some("rsa-pss-sha512".into());
        assert!(matches!(
            p.check(&alg, API_KEY, 1_641_013_201),
            Err(Failure::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn malformed_and_surprising_headers_are_refused() {
        for (input, signature) in [
            ("", SIGNATURE),
            (INPUT, ""),
            ("sig1=(\"x-api-key\")", "sig1=\"not bytes\""),
            ("sig1=\"not a list\"", SIGNATURE),
            (&format!("{INPUT}, sig2=(\"x-api-key\")"), SIGNATURE),
            (&INPUT.replace(";alg=", ";foo=1;alg="), SIGNATURE),
            (&INPUT.replace("sig1=(", "sig1=( "), SIGNATURE),
            (INPUT, "sig2=:AAAA:"),
            ("sig1=(\"x-api-key\";sf)", SIGNATURE),
            ("sig1=(\"x-api-key\" \"x-api-key\")", SIGNATURE),
            (
                &INPUT.replace("created=1641013200", "created=-1"),
                SIGNATURE,
            ),
        ] {
            assert!(parse(input, signature).is_err(), "{input} / {signature}");
        }
    }
}
