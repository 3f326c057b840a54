//! The statements a session has run, and the prepared form of those it
//! runs again.
//!
//! A statement sent as a simple query is parsed and planned by the server
//! every time; a prepared one only binds and executes, which is most of the
//! server's share of an uncontended lock/unlock cycle. Preparing costs a
//! round trip of its own, so a statement is prepared the second time a
//! session runs it: a name locked once pays nothing, a name locked in a
//! loop pays once per session. Statements keep the lock's name in their
//! comment (for the admin view), so each name has its own.

use tokio_postgres::types::Type;
use tokio_postgres::Statement;

/// How many statements a session remembers (least recently used first out;
/// dropping a prepared one closes it on the server).
const CAPACITY: usize = 16;

enum Entry {
    /// Run once, as a simple query.
    Seen,
    /// Prepared: run with the extended protocol.
    Prepared(Statement),
    /// Its result type has no text form here: stays a simple query.
    Simple,
}

/// What to do with a statement now.
pub(crate) enum Plan {
    Simple,
    Prepare,
    Run(Statement),
}

#[derive(Default)]
pub(crate) struct Statements {
    entries: Vec<(String, Entry)>,
}

impl Statements {
    pub(crate) fn plan(&mut self, sql: &str) -> Plan {
        // Several statements in one string run as a simple query only.
        if sql.contains(';') {
            return Plan::Simple;
        }
        let Some(at) = self.entries.iter().position(|(s, _)| s == sql) else {
            if self.entries.len() == CAPACITY {
                self.entries.remove(0);
            }
            self.entries.push((sql.to_owned(), Entry::Seen));
            return Plan::Simple;
        };
        let entry = self.entries.remove(at);
        let plan = match &entry.1 {
            Entry::Seen => Plan::Prepare,
            Entry::Prepared(s) => Plan::Run(s.clone()),
            Entry::Simple => Plan::Simple,
        };
        self.entries.push(entry);
        plan
    }

    /// Records the prepared form of `sql`; whether its result can be read
    /// as text (else it stays a simple query).
    pub(crate) fn prepared(&mut self, sql: &str, statement: &Statement) -> bool {
        let usable = textual(statement);
        if let Some((_, entry)) = self.entries.iter_mut().find(|(s, _)| s == sql) {
            *entry = if usable {
                Entry::Prepared(statement.clone())
            } else {
                Entry::Simple
            };
        }
        usable
    }
}

/// One column of a type [`text_of`] reads.
fn textual(statement: &Statement) -> bool {
    statement.params().is_empty()
        && matches!(statement.columns(), [c] if [Type::TEXT, Type::BOOL, Type::INT4, Type::INT8].contains(c.type_()))
}

/// The first column of `row` as the simple protocol's text would show it.
pub(crate) fn text_of(row: &tokio_postgres::Row) -> Result<Option<String>, tokio_postgres::Error> {
    let ty = row.columns()[0].type_().clone();
    Ok(if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(0)?
            .map(|b| if b { "t" } else { "f" }.to_owned())
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(0)?.map(|v| v.to_string())
    } else if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(0)?.map(|v| v.to_string())
    } else {
        row.try_get::<_, Option<String>>(0)?
    })
}
