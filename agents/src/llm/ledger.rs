//! The token ledger: every call to a model is recorded (tokens as the server reported them, model, person, agent,
//! task, frontend, duration, outcome), and budgets are checked before a call is sent.
//!
//! A call first *reserves* its largest possible cost (an estimate of the prompt, counted high, plus the most
//! tokens its answer may have) against every budget that applies: `[llm.budgets] person_daily`, `agent_daily`
//! and `daily`, per UTC day. A reservation that would take a budget past its limit is refused with an error
//! naming the budget, and nothing is sent. When the call ends, the reservation is replaced by what the server
//! counted, and the record is made durable (`MessageLog::sync`) before the answer is returned. Today's totals are
//! rebuilt from the records when the ledger opens, so budgets hold across restarts.

use std::collections::{BTreeMap, HashMap};

use dreamos_runtime::{
    config::LlmBudgets,
    log::MessageLog,
    message::Millis,
    usage::{UsageRecord, UsageStore},
};
use parking_lot::Mutex;
use serde::Serialize;

use super::LlmError;
use crate::error::{Error, Result};

const DAY_MILLIS: u64 = 86_400_000;

/// On whose behalf a call is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// `frontend:name` of the person who asked, if one did.
    pub person: Option<String>,
    pub agent: Option<String>,
    pub task: Option<String>,
    pub frontend: Option<String>,
}

/// Spending of one UTC day, records and reservations apart.
#[derive(Debug, Default)]
struct Day {
    day: u64,
    total: u64,
    person: HashMap<String, u64>,
    agent: HashMap<String, u64>,
    reserved_total: u64,
    reserved_person: HashMap<String, u64>,
    reserved_agent: HashMap<String, u64>,
}

impl Day {
    fn add(&mut self, caller_person: Option<&str>, caller_agent: Option<&str>, tokens: u64) {
        self.total += tokens;
        if let Some(person) = caller_person {
            *self.person.entry(person.to_string()).or_default() += tokens;
        }
        if let Some(agent) = caller_agent {
            *self.agent.entry(agent.to_string()).or_default() += tokens;
        }
    }
}

/// Tokens held for a call in flight; give it back with [`Ledger::record`] (or drop it, if the call was never
/// made).
#[derive(Debug)]
pub struct Reservation {
    day: u64,
    caller: Caller,
    tokens: u64,
    settled: bool,
    ledger: Option<std::sync::Arc<Mutex<Day>>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            if let Some(ledger) = self.ledger.take() {
                release(&mut ledger.lock(), self);
            }
        }
    }
}

fn release(day: &mut Day, reservation: &Reservation) {
    if day.day != reservation.day {
        return;
    }
    let tokens = reservation.tokens;
    day.reserved_total = day.reserved_total.saturating_sub(tokens);
    if let Some(person) = &reservation.caller.person {
        if let Some(held) = day.reserved_person.get_mut(person) {
            *held = held.saturating_sub(tokens);
        }
    }
    if let Some(agent) = &reservation.caller.agent {
        if let Some(held) = day.reserved_agent.get_mut(agent) {
            *held = held.saturating_sub(tokens);
        }
    }
}

/// Totals for `/usage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Per model: calls, prompt tokens, completion tokens.
    pub by_model: BTreeMap<String, (u64, u64, u64)>,
}

/// Which records `/usage` adds up.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub person: Option<String>,
    pub agent: Option<String>,
    pub since: Option<Millis>,
}

/// The ledger. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: UsageStore,
    log: MessageLog,
    budgets: LlmBudgets,
    day: std::sync::Arc<Mutex<Day>>,
}

impl Ledger {
    /// Opens the ledger and counts today's spending from its records.
    pub fn open(store: UsageStore, log: MessageLog, budgets: LlmBudgets) -> Result<Ledger> {
        let ledger = Ledger {
            store,
            log,
            budgets,
            day: std::sync::Arc::new(Mutex::new(Day::default())),
        };
        ledger.roll(Millis::now())?;
        Ok(ledger)
    }

    /// Starts a new day's counts when `now` is in another day than the one counted.
    fn roll(&self, now: Millis) -> Result<()> {
        let today = now.0 / DAY_MILLIS;
        if self.day.lock().day == today && today != 0 {
            return Ok(());
        }
        let mut fresh = Day {
            day: today,
            ..Day::default()
        };
        for record in self.store.since(Millis(today * DAY_MILLIS)) {
            let record = record?;
            fresh.add(
                record.person.as_deref(),
                record.agent.as_deref(),
                record.tokens(),
            );
        }
        let mut day = self.day.lock();
        if day.day != today {
            *day = fresh;
        }
        Ok(())
    }

    /// Holds `tokens` for a call by `caller`, or refuses it naming the budget it would exceed.
    pub fn reserve(&self, caller: &Caller, tokens: u64) -> Result<Reservation> {
        self.roll(Millis::now())?;
        let mut day = self.day.lock();
        let budgets = &self.budgets;
        let check = |limit: u64, spent: u64, held: u64, what: String| -> Result<()> {
            if limit > 0 && spent + held + tokens > limit {
                return Err(Error::Llm(LlmError::Budget(format!(
                    "refused before it was sent: {what} would go past its budget ({spent} tokens spent today and {held} held by calls in flight, this call may take up to {tokens}, the limit is {limit}); wait for tomorrow (UTC) or raise it in [llm.budgets]"
                ))));
            }
            Ok(())
        };
        check(
            budgets.daily,
            day.total,
            day.reserved_total,
            "the swarm's daily total (llm.budgets.daily)".to_string(),
        )?;
        if let Some(person) = &caller.person {
            check(
                budgets.person_daily,
                day.person.get(person).copied().unwrap_or(0),
                day.reserved_person.get(person).copied().unwrap_or(0),
                format!("{person}'s daily spending (llm.budgets.person_daily)"),
            )?;
        }
        if let Some(agent) = &caller.agent {
            check(
                budgets.agent_daily,
                day.agent.get(agent).copied().unwrap_or(0),
                day.reserved_agent.get(agent).copied().unwrap_or(0),
                format!("agent {agent}'s daily spending (llm.budgets.agent_daily)"),
            )?;
        }
        day.reserved_total += tokens;
        if let Some(person) = &caller.person {
            *day.reserved_person.entry(person.clone()).or_default() += tokens;
        }
        if let Some(agent) = &caller.agent {
            *day.reserved_agent.entry(agent.clone()).or_default() += tokens;
        }
        Ok(Reservation {
            day: day.day,
            caller: caller.clone(),
            tokens,
            settled: false,
            ledger: Some(self.day.clone()),
        })
    }

    /// Replaces a reservation by what the call cost and makes the record durable before returning.
    pub async fn record(&self, mut reservation: Reservation, record: UsageRecord) -> Result<()> {
        {
            let mut day = self.day.lock();
            release(&mut day, &reservation);
            if day.day == record.at.0 / DAY_MILLIS {
                day.add(
                    record.person.as_deref(),
                    record.agent.as_deref(),
                    record.tokens(),
                );
            }
        }
        reservation.settled = true;
        self.store.insert(&record)?;
        self.log.sync().await?;
        Ok(())
    }

    /// Adds up the records `filter` selects.
    pub fn totals(&self, filter: &UsageFilter) -> Result<Totals> {
        let mut totals = Totals::default();
        for record in self.store.since(filter.since.unwrap_or(Millis(0))) {
            let record = record?;
            if filter
                .person
                .as_ref()
                .is_some_and(|p| record.person.as_ref() != Some(p))
                || filter
                    .agent
                    .as_ref()
                    .is_some_and(|a| record.agent.as_ref() != Some(a))
            {
                continue;
            }
            totals.calls += 1;
            if record.outcome != "ok" {
                totals.failed += 1;
            }
            totals.prompt_tokens += record.prompt_tokens;
            totals.completion_tokens += record.completion_tokens;
            let model = totals.by_model.entry(record.model.clone()).or_default();
            model.0 += 1;
            model.1 += record.prompt_tokens;
            model.2 += record.completion_tokens;
        }
        Ok(totals)
    }
}

/// A high estimate of a prompt's tokens from its length: about 4 bytes a token in English and code, counted as 3
/// so that a budget is never passed by an estimate that was too low; plus a few tokens a message for the chat
/// template.
pub fn estimate_prompt_tokens(bytes: usize, messages: usize) -> u64 {
    (bytes as u64).div_ceil(3) + 8 * messages as u64
}
