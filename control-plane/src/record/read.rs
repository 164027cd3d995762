//! The three reads an operator makes, on whichever backend is configured: the newest leads, one
//! lead with its calls and retries, one call in full. Numbers are masked here unless
//! [`Numbers::Revealed`] is asked for, so no caller can forget to.

use uuid::Uuid;

use super::{CallRecord, LeadListItem, LeadRecord, Numbers, RetryView};
use crate::cost::{CallFilter, CostRow, Pricing};
use crate::store::{Store, StoreError};

/// Leads listed when no limit is given.
pub const DEFAULT_LEADS: u32 = 50;
/// Most leads one list returns.
pub const MAX_LEADS: u32 = 1000;

/// The newest `limit` leads (at most [`MAX_LEADS`]), with their latest call.
pub async fn leads(store: &Store, limit: u32, numbers: Numbers) -> Result<Vec<LeadListItem>, StoreError> {
    let limit = limit.clamp(1, MAX_LEADS);
    let mut list = match store {
        Store::Sql(s) => super::sql::leads(s, limit).await?,
        Store::Supabase(s) => super::supabase::leads(s, limit).await?,
    };
    for l in &mut list {
        l.phone = numbers.show(&l.phone);
    }
    Ok(list)
}

/// One lead, its calls (newest first) and its retries; `None` if there is no such lead.
pub async fn lead(store: &Store, id: Uuid, numbers: Numbers) -> Result<Option<LeadRecord>, StoreError> {
    let found = match store {
        Store::Sql(s) => super::sql::lead(s, id).await?,
        Store::Supabase(s) => super::supabase::lead(s, id).await?,
    };
    let Some((mut lead, calls)) = found else { return Ok(None) };
    lead.phone = numbers.show(&lead.phone);
    let retries = store.retries_for_lead(id).await?.into_iter().map(RetryView::from).collect();
    Ok(Some(LeadRecord { lead, calls, retries, cost: None }))
}

/// One call in full; `None` if there is no such call.
pub async fn call(store: &Store, id: Uuid, numbers: Numbers) -> Result<Option<CallRecord>, StoreError> {
    let rows = match store {
        Store::Sql(s) => super::sql::call(s, id).await?,
        Store::Supabase(s) => super::supabase::call(s, id).await?,
    };
    Ok(rows.map(|r| CallRecord::build(r, numbers)))
}

/// The calls `filter` selects, newest first, with what their cost is computed from; numbers in
/// clear (the cost masks them).
pub async fn cost_rows(store: &Store, filter: CallFilter) -> Result<Vec<CostRow>, StoreError> {
    match store {
        Store::Sql(s) => super::sql::cost_rows(s, filter).await,
        Store::Supabase(s) => super::supabase::cost_rows(s, filter).await,
    }
}

/// [`lead`] with its calls' costs when `pricing` is given (`PRICES_FILE`).
pub async fn lead_priced(
    store: &Store,
    id: Uuid,
    numbers: Numbers,
    pricing: Option<&Pricing<'_>>,
) -> Result<Option<LeadRecord>, StoreError> {
    let Some(mut r) = lead(store, id, numbers).await? else { return Ok(None) };
    if let Some(p) = pricing {
        let filter = CallFilter { lead: Some(id), call: None, since: None, limit: u32::MAX };
        r.cost = Some(p.report(store, filter, numbers).await?);
    }
    Ok(Some(r))
}

/// [`call`] with its cost when `pricing` is given (`PRICES_FILE`).
pub async fn call_priced(
    store: &Store,
    id: Uuid,
    numbers: Numbers,
    pricing: Option<&Pricing<'_>>,
) -> Result<Option<CallRecord>, StoreError> {
    let Some(mut r) = call(store, id, numbers).await? else { return Ok(None) };
    if let Some(p) = pricing {
        let filter = CallFilter { lead: None, call: Some(id), since: None, limit: 1 };
        r.cost = p.report(store, filter, numbers).await?.calls.pop();
    }
    Ok(Some(r))
}
