//! Accounts: register, log in, log out, bearer tokens, and the middleware that turns a session
//! cookie or a bearer token into the request's [`HubUser`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use signalr_server::HubUser;

use crate::rejection::Rejection;
use crate::store::Account;
use crate::{AppState, Web};

/// The session cookie's name.
const SESSION_COOKIE: &str = "session";
/// Limits on what an account may be made of.
const MAX_USER_NAME: usize = 64;
const MAX_PASSWORD: usize = 1024;

/// How many passwords may be hashed at once: each hash takes 19 MiB on purpose, so without a
/// bound a burst of logins would take gigabytes.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs password hashing work on the blocking pool, a few at a time.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Rejection> {
    let _permit = HASHING.acquire().await.map_err(Rejection::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Rejection::internal)
}

/// How long sessions and bearer tokens last.
const TOKEN_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// Signs and checks session tokens (HS256 JWTs).
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The account id.
    sub: String,
    /// The user name.
    name: String,
    exp: u64,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        let encoding = EncodingKey::from_secret(secret).expect("an HMAC key takes any secret");
        let decoding = DecodingKey::from_secret(secret).expect("an HMAC key takes any secret");
        Tokens { encoding, decoding }
    }

    fn issue(&self, account: &Account) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let claims = Claims {
            sub: account.id.clone(),
            name: account.user_name.clone(),
            exp: now.as_secs() + TOKEN_LIFETIME_SECONDS,
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.encoding).expect("HS256 signing")
    }

    fn check(&self, token: &str) -> Option<HubUser> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &Validation::default())
            .ok()?
            .claims;
        Some(HubUser::new(claims.sub, claims.name))
    }
}

/// The caller's candidate tokens, in order: the session cookie, then the bearer token where
/// SignalR clients put it (see [`signalr_server::bearer_token`]).
fn find_tokens(request: &Request) -> impl Iterator<Item = String> + use<> {
    let session = cookie(request.headers(), SESSION_COOKIE);
    session
        .into_iter()
        .chain(signalr_server::bearer_token(request))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

/// Middleware: attaches the authenticated user, if any, to the request.
pub async fn authenticate(State(state): State<Web>, mut request: Request, next: Next) -> Response {
    // A stale cookie must not hide a valid bearer token: the first valid one wins.
    if let Some(user) = find_tokens(&request).find_map(|token| state.tokens.check(&token)) {
        request.extensions_mut().insert(user);
    }
    next.run(request).await
}

/// A user name and password from a JSON or form body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    password: String,
}

fn read_credentials(headers: &HeaderMap, body: &Bytes) -> Result<Credentials, Rejection> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let credentials: Credentials = if is_form {
        serde_urlencoded::from_bytes(body)
            .map_err(|_| Rejection::BadRequest("the form is malformed"))?
    } else {
        serde_json::from_slice(body).map_err(|_| {
            Rejection::BadRequest("the body must be JSON with userName and password")
        })?
    };
    if credentials.user_name.trim().is_empty() || credentials.password.is_empty() {
        return Err(Rejection::BadRequest(
            "userName and password must not be empty",
        ));
    }
    let name = credentials.user_name.trim();
    if name.chars().count() > MAX_USER_NAME || name.chars().any(char::is_control) {
        return Err(Rejection::BadRequest(
            "userName: at most 64 characters, no control characters",
        ));
    }
    if credentials.password.len() > MAX_PASSWORD {
        return Err(Rejection::BadRequest("password: at most 1024 bytes"));
    }
    Ok(credentials)
}

/// A 200 with the account that also sets the session cookie.
fn signed_in(state: &AppState, account: Account) -> Response {
    let token = state.tokens.issue(&account);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={TOKEN_LIFETIME_SECONDS}"
    );
    ([(header::SET_COOKIE, cookie)], Json(account)).into_response()
}

/// `POST /account/register`.
pub async fn register(
    State(state): State<Web>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let credentials = read_credentials(&headers, &body)?;
    let password = credentials.password;
    let hash = hashing(move || {
        let salt =
            SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes fit a salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await?
    .map_err(Rejection::internal)?;
    let account = state
        .store
        .create_account(credentials.user_name.trim(), &hash)
        .map_err(Rejection::internal)?
        .ok_or(Rejection::Conflict("that user name is taken"))?;
    Ok(signed_in(&state, account))
}

/// Checks credentials.
async fn verify(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Account, Rejection> {
    let credentials = read_credentials(headers, body)?;
    let unauthorized = Rejection::Unauthorized("wrong user name or password");
    let found = state.store.account_with_hash(credentials.user_name.trim());
    let Some((account, hash)) = found.map_err(Rejection::internal)? else {
        return Err(unauthorized);
    };
    let password = credentials.password;
    let valid = hashing(move || {
        PasswordHash::new(&hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await?;
    if valid {
        Ok(account)
    } else {
        Err(unauthorized)
    }
}

/// `POST /account/login`.
pub async fn login(
    State(state): State<Web>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let account = verify(&state, &headers, &body).await?;
    Ok(signed_in(&state, account))
}

/// `POST /account/token`: a bearer token for scripts.
pub async fn token(
    State(state): State<Web>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let account = verify(&state, &headers, &body).await?;
    Ok(Json(serde_json::json!({ "token": state.tokens.issue(&account) })).into_response())
}

/// `POST /account/logout`: clears the session cookie.
pub async fn logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], StatusCode::OK).into_response()
}

/// `GET /account/me`: the logged-in account, or 401.
pub async fn me(user: Option<axum::Extension<HubUser>>) -> Response {
    match user {
        Some(axum::Extension(user)) => Json(Account {
            id: user.id,
            user_name: user.name.unwrap_or_default(),
        })
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
