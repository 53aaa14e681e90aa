//! What a query may be: one read-only statement over the project's own tables.
//!
//! Two gates, so that neither has to be perfect alone:
//! 1. the parsed statement must be a single `SELECT`/`WITH`/`VALUES` query or
//!    an `EXPLAIN` of one (everything else — DDL, DML, `COPY`, `SET`,
//!    `CREATE EXTERNAL TABLE`, transactions — is refused by kind, before
//!    planning);
//! 2. the logical plan may scan only the session's `events`, `rejected` and `persons`
//!    tables: a table function (which could read files or generate unbounded
//!    rows) plans to a scan of something else and is refused, and DataFusion's
//!    own `SQLOptions` re-check that the plan has no DDL, DML or statements.
//!
//! Other projects' tables cannot be named at all: the session's catalog holds
//! this project's tables and nothing else.

use std::collections::VecDeque;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::error::{Error, Result};

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Nesting depth the parser accepts (expressions, subqueries).
const RECURSION_LIMIT: usize = 64;
/// The tables a query may read.
pub const TABLES: [&str; 3] = ["events", "rejected", "persons"];

/// Parses `sql` and checks it is one read-only query.
pub fn parse(sql: &str) -> Result<Statement> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::BadQuery(format!("the SQL text is {} bytes; the limit is {MAX_SQL_BYTES}", sql.len())));
    }
    if sql.trim().is_empty() {
        return Err(Error::BadQuery("the SQL text is empty; send {\"sql\": \"SELECT …\"}".into()));
    }
    let dialect = GenericDialect {};
    let mut statements: VecDeque<Statement> = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| Error::BadQuery(format!("the SQL does not parse: {}", e.strip_backtrace())))?;
    if statements.len() != 1 {
        return Err(Error::BadQuery(format!(
            "send exactly one statement; got {} (remove the extra `;`-separated statements)",
            statements.len()
        )));
    }
    let statement = statements.pop_front().expect("one statement");
    check_kind(&statement)?;
    Ok(statement)
}

fn check_kind(statement: &Statement) -> Result<()> {
    let refused = |what: &str| {
        Err(Error::BadQuery(format!(
            "{what} is not allowed: the SQL API is read-only and accepts one SELECT, WITH or EXPLAIN over `events`, `rejected` and `persons`"
        )))
    };
    match statement {
        Statement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_) => Ok(()),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(()),
                other => refused(&format!("EXPLAIN of `{}`", keyword(&other.to_string()))),
            },
            other => refused(&format!("`{}`", keyword(&other.to_string()))),
        },
        Statement::Explain(explain) => match explain.statement.as_ref() {
            Statement::Statement(inner) if matches!(inner.as_ref(), SqlStatement::Query(_)) => Ok(()),
            other => refused(&format!("EXPLAIN of `{}`", keyword(&other.to_string()))),
        },
        Statement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE"),
        Statement::CopyTo(_) => refused("COPY"),
        Statement::Reset(_) => refused("RESET"),
    }
}

/// The first words of a statement, to name it in a message without echoing it whole.
fn keyword(text: &str) -> String {
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase()
}

/// Checks a planned query: no DDL/DML/statements, and scans of the session's tables only.
pub fn check_plan(plan: &LogicalPlan) -> Result<()> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|e| Error::BadQuery(e.strip_backtrace()))?;
    let mut foreign = None;
    // A recursive CTE reads its own work table by name; it is visited before
    // the scans inside it.
    let mut ctes: Vec<String> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::RecursiveQuery(recursive) = node {
            ctes.push(recursive.name.clone());
        }
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table();
            let qualified_elsewhere = scan.table_name.schema().is_some_and(|s| s != "public");
            let allowed =
                TABLES.contains(&name) || (scan.table_name.schema().is_none() && ctes.iter().any(|c| c == name));
            if !allowed || qualified_elsewhere {
                foreign = Some(scan.table_name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| Error::BadQuery(e.strip_backtrace()))?;
    match foreign {
        Some(name) => Err(Error::BadQuery(format!(
            "`{name}` cannot be read: queries may read only the tables `events`, `rejected` and `persons` (no table functions)"
        ))),
        None => Ok(()),
    }
}
