//! Bearer tokens of `/generateJwtToken` and `/authorizedhub`: HS256 JWTs for the user
//! `testuser`, signed with a secret made at start-up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use signalr_server::HubUser;

const ISSUER: &str = "SignalRTestServer";
const AUDIENCE: &str = "SignalRTests";
/// The only user tokens are issued for.
pub const USER: &str = "testuser";
/// How long an issued token is valid (before the clock-skew allowance).
const LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Clock skew allowed when validating, as the reference's default (5 minutes).
const LEEWAY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The name identifier claim.
    nameid: String,
    iss: String,
    aud: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// Issues and checks tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    /// Keys from a fresh random secret.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let encoding = EncodingKey::from_secret(&secret).expect("an HMAC key takes any secret");
        let decoding = DecodingKey::from_secret(&secret).expect("an HMAC key takes any secret");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        Tokens {
            encoding,
            decoding,
            validation,
        }
    }

    /// A fresh token for [`USER`].
    pub fn issue(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            nameid: USER.into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: now,
            iat: now,
            exp: now + LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing")
    }

    /// The user of a valid token.
    pub fn check(&self, token: &str) -> Option<HubUser> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        (claims.nameid == USER).then(|| HubUser::new(USER, USER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_validate_and_others_do_not() {
        let tokens = Tokens::random();
        let token = tokens.issue();
        assert_eq!(tokens.check(&token), Some(HubUser::new(USER, USER)));
        assert_eq!(Tokens::random().check(&token), None);
        assert_eq!(tokens.check("not-a-token"), None);
    }
}
