//! Signing webhook requests the Standard Webhooks way: `webhook-signature` holds
//! `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, once per secret (`WEBHOOK_SECRET` may list
//! several, space-separated, so that receivers can move to a new one before the old goes).

use standardwebhooks::Webhook;

/// The fewest bytes a secret must decode to (Svix's secrets are 24 to 64).
pub const MIN_SECRET_BYTES: usize = 16;

/// The secrets requests are signed with.
#[derive(Clone)]
pub struct Signer {
    secrets: std::sync::Arc<[Webhook]>,
}

/// Never shows the secrets.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} secrets)", self.secrets.len())
    }
}

impl Signer {
    /// The signer of `secrets` (`whsec_<base64>`, space-separated); why they cannot sign.
    pub fn parse(secrets: &str) -> Result<Self, String> {
        let secrets = secrets
            .split_whitespace()
            .map(parse_secret)
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err("WEBHOOK_SECRET must name at least one whsec_ secret".to_owned());
        }
        Ok(Self {
            secrets: secrets.into(),
        })
    }

    /// The `webhook-signature` value of message `id`, sent at `timestamp` (Unix seconds), with
    /// this `body`: one `v1,…` signature per secret, space-separated.
    pub fn signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        self.secrets
            .iter()
            .map(|secret| {
                secret
                    .sign(id, timestamp, body.as_bytes())
                    .expect("a str is UTF-8")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn parse_secret(text: &str) -> Result<Webhook, String> {
    use base64::Engine;
    let invalid = || {
        format!(
            "a WEBHOOK_SECRET must be whsec_ and the base64 of {MIN_SECRET_BYTES} bytes or more"
        )
    };
    let key = text.strip_prefix("whsec_").ok_or_else(invalid)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| invalid())?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(invalid());
    }
    Ok(Webhook::from_bytes(bytes).expect("any bytes make a key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_specifications_example_is_signed_as_it_says() {
        let signer = Signer::parse(SECRET).unwrap();
        let signature = signer.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_secret_signs_so_receivers_can_rotate() {
        let other = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=";
        let signer = Signer::parse(&format!("{SECRET} {other}")).unwrap();
        let signature = signer.signature("msg_1", 1, "{}");
        let parts: Vec<&str> = signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1],
            Signer::parse(other).unwrap().signature("msg_1", 1, "{}")
        );
    }

    #[test]
    fn secrets_that_cannot_be_keys_are_refused() {
        for bad in ["", "plain", "whsec_", "whsec_!!!", "whsec_c2hvcnQ="] {
            assert!(Signer::parse(bad).is_err(), "{bad:?}");
        }
    }
}
