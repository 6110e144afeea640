//! The showcase's data in an embedded SQLite database: accounts, orders, chat rooms, votes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE accounts (
         id TEXT PRIMARY KEY,
         user_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
         password_hash TEXT NOT NULL
     );
     CREATE TABLE orders (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         name TEXT NOT NULL,
         item_name TEXT NOT NULL,
         count INTEGER NOT NULL
     );
     CREATE TABLE chat_rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
     CREATE TABLE votes (kind TEXT PRIMARY KEY, count INTEGER NOT NULL);
     INSERT INTO votes (kind, count) VALUES ('cloak', 0), ('stone', 0), ('wand', 0);
     CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);",
    // Live counts (connected users, page views, each user's chat connections), one row per
    // node and name, so that nodes sharing the database add up to one figure.
    "CREATE TABLE live_counts (
         node TEXT NOT NULL,
         name TEXT NOT NULL,
         value INTEGER NOT NULL,
         PRIMARY KEY (node, name)
     );",
];

/// A handle to the database; cloning shares the connection.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
}

/// One account, without its password hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub user_name: String,
}

/// One stored order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: i64,
    pub name: String,
    pub item_name: String,
    pub count: i64,
}

/// One chat room.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRoom {
    pub id: i64,
    pub name: String,
}

/// The three vote counts.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Votes {
    pub cloak: i64,
    pub stone: i64,
    pub wand: i64,
}

pub type Result<T> = rusqlite::Result<T>;

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let mut connection = Connection::open(path)?;
        restrict_to_owner(path);
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        Ok(Store {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        work(&self.connection.lock().expect("database lock"))
    }

    /// Adds `change` to this node's count `name` and returns the total over every node.
    pub fn add_live_count(&self, node: &str, name: &str, change: i64) -> Result<i64> {
        self.with(|db| {
            let transaction = db.unchecked_transaction()?;
            transaction.execute(
                "INSERT INTO live_counts (node, name, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node, name) DO UPDATE SET value = value + excluded.value",
                params![node, name, change],
            )?;
            transaction.execute(
                "DELETE FROM live_counts WHERE node = ?1 AND name = ?2 AND value = 0",
                params![node, name],
            )?;
            let total = transaction.query_row(
                "SELECT COALESCE(SUM(value), 0) FROM live_counts WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )?;
            transaction.commit()?;
            Ok(total)
        })
    }

    /// Forgets what a node counted before it (re)started.
    pub fn clear_live_counts(&self, node: &str) -> Result<()> {
        self.with(|db| {
            db.execute("DELETE FROM live_counts WHERE node = ?1", params![node])
                .map(drop)
        })
    }

    /// The secret that signs session tokens, made on first use and shared by every process
    /// using this database.
    pub fn token_secret(&self) -> Result<Vec<u8>> {
        self.with(|db| {
            let candidate: [u8; 32] = rand::random();
            db.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('token_secret', ?1)",
                params![candidate.as_slice()],
            )?;
            db.query_row(
                "SELECT value FROM settings WHERE name = 'token_secret'",
                [],
                |row| row.get(0),
            )
        })
    }

    /// Creates an account; `Ok(None)` when the name is taken.
    pub fn create_account(&self, user_name: &str, password_hash: &str) -> Result<Option<Account>> {
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            user_name: user_name.to_owned(),
        };
        self.with(|db| {
            let inserted = db.execute(
                "INSERT OR IGNORE INTO accounts (id, user_name, password_hash) VALUES (?1, ?2, ?3)",
                params![account.id, account.user_name, password_hash],
            )?;
            Ok((inserted == 1).then_some(account))
        })
    }

    /// An account and its password hash, by user name (case-insensitive).
    pub fn account_with_hash(&self, user_name: &str) -> Result<Option<(Account, String)>> {
        self.with(|db| {
            db.query_row(
                "SELECT id, user_name, password_hash FROM accounts WHERE user_name = ?1",
                params![user_name],
                |row| {
                    Ok((
                        Account {
                            id: row.get(0)?,
                            user_name: row.get(1)?,
                        },
                        row.get(2)?,
                    ))
                },
            )
            .optional()
        })
    }

    /// Every account but `except_id`, by name.
    pub fn other_accounts(&self, except_id: &str) -> Result<Vec<Account>> {
        self.with(|db| {
            let mut statement =
                db.prepare("SELECT id, user_name FROM accounts WHERE id <> ?1 ORDER BY user_name")?;
            let rows = statement.query_map(params![except_id], |row| {
                Ok(Account {
                    id: row.get(0)?,
                    user_name: row.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Stores an order and returns its id.
    pub fn add_order(&self, name: &str, item_name: &str, count: i64) -> Result<i64> {
        self.with(|db| {
            db.execute(
                "INSERT INTO orders (name, item_name, count) VALUES (?1, ?2, ?3)",
                params![name, item_name, count],
            )?;
            Ok(db.last_insert_rowid())
        })
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Result<Vec<Order>> {
        self.with(|db| {
            let mut statement =
                db.prepare("SELECT id, name, item_name, count FROM orders ORDER BY id")?;
            let rows = statement.query_map([], |row| {
                Ok(Order {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    item_name: row.get(2)?,
                    count: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Every chat room, by id.
    pub fn chat_rooms(&self) -> Result<Vec<ChatRoom>> {
        self.with(|db| {
            let mut statement = db.prepare("SELECT id, name FROM chat_rooms ORDER BY id")?;
            let rows = statement.query_map([], |row| {
                Ok(ChatRoom {
                    id: row.get(0)?,
                    name: row.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Creates a chat room.
    pub fn add_chat_room(&self, name: &str) -> Result<ChatRoom> {
        self.with(|db| {
            db.execute("INSERT INTO chat_rooms (name) VALUES (?1)", params![name])?;
            Ok(ChatRoom {
                id: db.last_insert_rowid(),
                name: name.to_owned(),
            })
        })
    }

    /// Deletes a chat room; `false` when there was none with that id.
    pub fn delete_chat_room(&self, id: i64) -> Result<bool> {
        self.with(|db| Ok(db.execute("DELETE FROM chat_rooms WHERE id = ?1", params![id])? == 1))
    }

    /// The current vote counts.
    pub fn votes(&self) -> Result<Votes> {
        self.with(read_votes)
    }

    /// Adds one vote of a known kind and returns the new counts; `None` for an unknown kind.
    pub fn vote(&self, kind: &str) -> Result<Option<Votes>> {
        self.with(|db| {
            let changed = db.execute(
                "UPDATE votes SET count = count + 1 WHERE kind = ?1",
                params![kind],
            )?;
            if changed == 0 {
                Ok(None)
            } else {
                read_votes(db).map(Some)
            }
        })
    }
}

/// The database holds password hashes and the token secret: only its owner may read it.
fn restrict_to_owner(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

fn read_votes(db: &Connection) -> Result<Votes> {
    let count = |kind: &str| {
        db.query_row(
            "SELECT count FROM votes WHERE kind = ?1",
            params![kind],
            |row| row.get(0),
        )
    };
    Ok(Votes {
        cloak: count("cloak")?,
        stone: count("stone")?,
        wand: count("wand")?,
    })
}

fn migrate(connection: &mut Connection) -> Result<()> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index + 1)?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open(Path::new(":memory:")).unwrap()
    }

    #[test]
    fn account_names_are_unique_ignoring_case() {
        let store = store();
        assert!(store.create_account("Ann", "h").unwrap().is_some());
        assert!(store.create_account("ann", "h").unwrap().is_none());
        let (account, hash) = store.account_with_hash("ANN").unwrap().unwrap();
        assert_eq!((account.user_name.as_str(), hash.as_str()), ("Ann", "h"));
    }

    #[test]
    fn live_counts_add_up_over_nodes_and_restart_per_node() {
        let store = store();
        assert_eq!(store.add_live_count("a", "users", 1).unwrap(), 1);
        assert_eq!(store.add_live_count("b", "users", 2).unwrap(), 3);
        assert_eq!(store.add_live_count("a", "users", -1).unwrap(), 2);
        assert_eq!(store.add_live_count("a", "views", 1).unwrap(), 1);
        store.clear_live_counts("b").unwrap();
        assert_eq!(store.add_live_count("a", "users", 0).unwrap(), 0);
        assert_eq!(store.add_live_count("b", "views", 1).unwrap(), 2);
    }

    #[test]
    fn votes_count_known_kinds_only() {
        let store = store();
        assert_eq!(
            store.vote("wand").unwrap(),
            Some(Votes {
                cloak: 0,
                stone: 0,
                wand: 1
            })
        );
        assert_eq!(store.vote("sword").unwrap(), None);
    }

    #[test]
    fn the_token_secret_is_stable() {
        let store = store();
        assert_eq!(store.token_secret().unwrap(), store.token_secret().unwrap());
    }
}
