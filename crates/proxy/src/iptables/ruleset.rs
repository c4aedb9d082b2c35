//! A rendered ruleset and the `iptables-restore --noflush` input that
//! takes a node from what it has to it: from the last applied ruleset,
//! only the chains whose rules changed (and, in the long dispatch chains,
//! only the rules that changed); from an `iptables-save` (first sync, or
//! after a failure), every chain, deleting stale ones.
//!
//! A ruleset is the fixed chains (KUBE-SERVICES, KUBE-POSTROUTING, ...)
//! plus one [`Fragment`] per service port: its lines in the dispatch chains
//! and its own chains. A fragment is shared (`Arc`) from one ruleset to the
//! next while its service port is unchanged, so neither rendering nor the
//! delta looks at the other 9,999 services when one changes.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::model::{Protocol, ServicePort};

use super::save::Saved;

/// The tables svcnet writes, in restore order.
pub const TABLES: [&str; 2] = ["nat", "filter"];

/// Chains svcnet owns start with this; a reconcile deletes the ones the
/// ruleset does not have.
pub const OWNED_PREFIX: &str = "KUBE-";

/// One chain and its rules (`-A NAME ...` lines, each ending in `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub rules: String,
}

/// One table's chains, in the order they are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    chains: Vec<Chain>,
    index: HashMap<String, usize>,
    rule_count: usize,
}

impl Table {
    /// Declares `name` (once; later calls are no-ops) without rules.
    pub fn declare(&mut self, name: &str) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_string(), self.chains.len());
            self.chains.push(Chain { name: name.to_string(), rules: String::new() });
        }
    }

    /// Appends `-A chain <spec>`, declaring the chain if needed.
    pub fn add(&mut self, chain: &str, spec: std::fmt::Arguments<'_>) {
        self.declare(chain);
        let i = self.index[chain];
        let rules = &mut self.chains[i].rules;
        // Writing to a String cannot fail.
        let _ = writeln!(rules, "-A {chain} {spec}");
        self.rule_count += 1;
    }

    /// Appends already rendered `-A chain ...` lines (`\n`-terminated).
    pub fn push_rules(&mut self, chain: &str, lines: &str) {
        self.declare(chain);
        let i = self.index[chain];
        self.chains[i].rules.push_str(lines);
        self.rule_count += lines.matches('\n').count();
    }

    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    pub fn get(&self, name: &str) -> Option<&Chain> {
        self.index.get(name).map(|&i| &self.chains[i])
    }

    pub fn rule_count(&self) -> usize {
        self.rule_count
    }
}

/// The chains whose rules are one or a few lines per service: a delta
/// edits them rule by rule (`-D` the old lines, `-I` the new ones at the
/// top, so each chain's fixed last rule stays last).
pub const DISPATCH: [(&str, &str); 4] = [
    ("nat", "KUBE-SERVICES"),
    ("nat", "KUBE-NODEPORTS"),
    ("filter", "KUBE-SERVICES"),
    ("filter", "KUBE-EXTERNAL-SERVICES"),
];

/// One service port's part of a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// What it was rendered from: reused while the service port and the
    /// cluster CIDR are unchanged.
    pub source: ServicePort,
    pub cluster_cidr: String,
    /// Its lines in each [`DISPATCH`] chain, in that order.
    pub dispatch: [String; 4],
    /// Its own chains (all nat: KUBE-SVC, KUBE-SVL, KUBE-EXT, KUBE-SEP).
    pub chains: Vec<Chain>,
    pub rule_count: usize,
}

/// A service port's identity: namespace, name, port name, protocol.
type FragmentKey<'a> = (&'a str, &'a str, &'a str, Protocol);

impl Fragment {
    fn key(&self) -> FragmentKey<'_> {
        key_of(&self.source)
    }
}

pub(crate) fn key_of(sp: &ServicePort) -> FragmentKey<'_> {
    (&sp.namespace, &sp.name, &sp.port_name, sp.protocol)
}

/// Everything svcnet programs in one node's nat and filter tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The fixed chains, dispatch chains included (with every fragment's
    /// lines).
    pub nat: Table,
    pub filter: Table,
    /// One per service port, in snapshot order.
    pub services: Vec<Arc<Fragment>>,
}

impl Ruleset {
    pub fn table(&self, name: &str) -> Option<&Table> {
        match name {
            "nat" => Some(&self.nat),
            "filter" => Some(&self.filter),
            _ => None,
        }
    }

    /// Every chain of `table`: the fixed ones, then the services'.
    pub fn chains<'a>(&'a self, table: &str) -> Box<dyn Iterator<Item = &'a Chain> + 'a> {
        match table {
            "nat" => Box::new(self.nat.chains().iter().chain(self.services.iter().flat_map(|f| f.chains.iter()))),
            "filter" => Box::new(self.filter.chains().iter()),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn rule_count(&self, table: &str) -> usize {
        match table {
            "nat" => self.nat.rule_count() + self.services.iter().map(|f| f.rule_count).sum::<usize>(),
            "filter" => self.filter.rule_count(),
            _ => 0,
        }
    }

    /// The service ports it was rendered from.
    pub fn service_ports(&self) -> impl Iterator<Item = &ServicePort> {
        self.services.iter().map(|f| &f.source)
    }

    /// The restore that creates this ruleset from nothing: every chain
    /// declared, then every rule. No jumps from the built-in chains (they
    /// depend on what the node has; see [`reconcile`]).
    pub fn full_text(&self) -> String {
        let mut out = String::new();
        for name in TABLES {
            let _ = writeln!(out, "*{name}");
            for c in self.chains(name) {
                let _ = writeln!(out, ":{} - [0:0]", c.name);
            }
            for c in self.chains(name) {
                out.push_str(&c.rules);
            }
            out.push_str("COMMIT\n");
        }
        out
    }
}

/// A jump from a built-in chain into svcnet's chains, installed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    pub table: &'static str,
    pub chain: &'static str,
    /// The rule after `-A CHAIN`, ending in `-j TARGET`.
    pub spec: &'static str,
    pub target: &'static str,
}

/// The built-in chains' jumps, kube-proxy's: nat PREROUTING and OUTPUT to
/// the service portals, POSTROUTING to the masquerade; filter new
/// connections to the reject/drop checks, and FORWARD to the forwarding
/// rules.
pub const JUMPS: [Jump; 8] = [
    Jump {
        table: "nat",
        chain: "PREROUTING",
        spec: "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        target: "KUBE-SERVICES",
    },
    Jump {
        table: "nat",
        chain: "OUTPUT",
        spec: "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        target: "KUBE-SERVICES",
    },
    Jump {
        table: "nat",
        chain: "POSTROUTING",
        spec: "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        target: "KUBE-POSTROUTING",
    },
    Jump {
        table: "filter",
        chain: "INPUT",
        spec: "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        target: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        chain: "FORWARD",
        spec: "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
        target: "KUBE-FORWARD",
    },
    Jump {
        table: "filter",
        chain: "FORWARD",
        spec: "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        target: "KUBE-SERVICES",
    },
    Jump {
        table: "filter",
        chain: "FORWARD",
        spec: "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        target: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        chain: "OUTPUT",
        spec: "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        target: "KUBE-SERVICES",
    },
];

/// One table's part of a restore, before it is written out.
#[derive(Default)]
struct Section {
    /// Chains to declare (which flushes them when they exist).
    declare: Vec<String>,
    /// `-D` lines for built-in rules that jump to chains being deleted.
    unhook: Vec<String>,
    /// Rules of the declared chains.
    rules: Vec<String>,
    /// `-D` and `-I` lines editing chains that are not declared.
    edits: Vec<String>,
    /// Chains to delete (declared above, so empty by then).
    delete: Vec<String>,
    /// `-I` lines for missing built-in jumps.
    hook: Vec<String>,
}

impl Section {
    fn is_empty(&self) -> bool {
        self.declare.is_empty() && self.unhook.is_empty() && self.edits.is_empty() && self.hook.is_empty()
    }

    /// Declares and writes `new` where it differs from `old`; flushes and
    /// deletes the chains of `old` that `new` lacks.
    fn chains(&mut self, old: &[Chain], new: &[Chain]) {
        for c in new {
            if old.iter().find(|o| o.name == c.name).is_none_or(|o| o.rules != c.rules) {
                self.declare.push(c.name.clone());
                self.rules.push(c.rules.clone());
            }
        }
        for c in old {
            if !new.iter().any(|n| n.name == c.name) {
                self.declare.push(c.name.clone());
                self.delete.push(c.name.clone());
            }
        }
    }

    fn write(self, table: &str, existing_rules: usize, out: &mut String) {
        let _ = writeln!(out, "*{table}");
        let commands = self.declare.len()
            + self.unhook.len()
            + self.rules.iter().map(|r| r.matches('\n').count()).sum::<usize>()
            + self.edits.len()
            + self.delete.len()
            + self.hook.len();
        if zero_counters_pays(commands, existing_rules) {
            // A command without a chain makes iptables-nft fetch every
            // chain at once instead of building a sorted linked list of the
            // chains the restore names, which is quadratic (7 minutes for
            // 110,000 chains). Its only effect is zeroing packet counters.
            out.push_str("-Z\n");
        }
        for c in &self.declare {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        for l in &self.unhook {
            let _ = writeln!(out, "{l}");
        }
        for r in &self.rules {
            out.push_str(r);
        }
        for l in &self.edits {
            let _ = writeln!(out, "{l}");
        }
        for c in &self.delete {
            let _ = writeln!(out, "-X {c}");
        }
        for l in &self.hook {
            let _ = writeln!(out, "{l}");
        }
        out.push_str("COMMIT\n");
    }
}

/// Whether `-Z` (which makes iptables-nft fetch every rule of the table,
/// about 8 µs each) costs less than the sorted-list inserts of a restore
/// with this many commands (about 10 ns × commands² / 4).
pub fn zero_counters_pays(commands: usize, existing_rules: usize) -> bool {
    const MIN_COMMANDS: usize = 2_000;
    commands >= MIN_COMMANDS && (commands as u128).pow(2) > existing_rules as u128 * 3_200
}

/// An `iptables-restore --noflush` input and what it does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restore {
    pub text: String,
    /// Chains declared and (re)written.
    pub chains_written: usize,
    /// Chains flushed and deleted.
    pub chains_deleted: usize,
    /// Rules deleted or inserted one by one in the dispatch chains.
    pub rules_edited: usize,
}

fn finish(sections: Vec<(&'static str, Section, usize)>) -> Option<Restore> {
    if sections.iter().all(|(_, s, _)| s.is_empty()) {
        return None;
    }
    let mut out = Restore::default();
    for (table, section, existing) in sections {
        if !section.is_empty() {
            out.chains_deleted += section.delete.len();
            out.rules_edited += section.edits.len();
            out.chains_written += section.declare.len() - section.delete.len();
            section.write(table, existing, &mut out.text);
        }
    }
    Some(out)
}

/// The restore from the last applied ruleset to `next`: declares and
/// rewrites only the chains whose rules differ, edits the dispatch chains
/// rule by rule when few of their rules changed, and flushes and deletes
/// the chains `next` no longer has, after the rules jumping to them are
/// gone, in the same transaction. Services whose fragment is shared with
/// `prev` are skipped without a look. `None` when nothing changed.
pub fn delta(prev: &Ruleset, next: &Ruleset) -> Option<Restore> {
    let mut sections = Vec::new();
    for name in TABLES {
        let (Some(old), Some(new)) = (prev.table(name), next.table(name)) else { continue };
        let mut s = Section::default();
        for c in new.chains() {
            let before = old.get(&c.name).map_or("", |o| o.rules.as_str());
            if before == c.rules {
                continue;
            }
            let dispatch = DISPATCH.contains(&(name, c.name.as_str()));
            match dispatch.then(|| line_edits(before, &c.rules)).flatten() {
                Some(edits) => s.edits.extend(edits),
                None => {
                    s.declare.push(c.name.clone());
                    s.rules.push(c.rules.clone());
                }
            }
        }
        for c in old.chains() {
            if new.get(&c.name).is_none() {
                s.declare.push(c.name.clone());
                s.delete.push(c.name.clone());
            }
        }
        if name == "nat" {
            let before: HashMap<FragmentKey<'_>, &Arc<Fragment>> = prev.services.iter().map(|f| (f.key(), f)).collect();
            let mut kept = HashSet::new();
            for f in &next.services {
                kept.insert(f.key());
                match before.get(&f.key()) {
                    Some(old) if Arc::ptr_eq(old, f) => {}
                    Some(old) => s.chains(&old.chains, &f.chains),
                    None => s.chains(&[], &f.chains),
                }
            }
            for f in prev.services.iter().filter(|f| !kept.contains(&f.key())) {
                s.chains(&f.chains, &[]);
            }
        }
        sections.push((name, s, prev.rule_count(name)));
    }
    finish(sections)
}

/// The `-D`/`-I` lines turning chain text `old` into `new` (as multisets of
/// rules; inserted rules go first), or `None` when so much changed that
/// rewriting the chain is simpler, or when the last rule changed (it must
/// stay last, and `-I` would put its replacement first).
fn line_edits(old: &str, new: &str) -> Option<Vec<String>> {
    if old.lines().last() != new.lines().last() {
        return None;
    }
    let mut count: HashMap<&str, i64> = HashMap::new();
    for l in old.lines() {
        *count.entry(l).or_default() += 1;
    }
    for l in new.lines() {
        *count.entry(l).or_default() -= 1;
    }
    let changed: i64 = count.values().map(|c| c.abs()).sum();
    let old_len = old.lines().count() as i64;
    if changed * 4 >= old_len {
        return None;
    }
    let mut edits = Vec::new();
    for l in old.lines() {
        if let Some(c) = count.get_mut(l).filter(|c| **c > 0) {
            *c -= 1;
            edits.push(format!("-D {}", &l[3..]));
        }
    }
    for l in new.lines() {
        if let Some(c) = count.get_mut(l).filter(|c| **c < 0) {
            *c += 1;
            edits.push(format!("-I {}", &l[3..]));
        }
    }
    Some(edits)
}

/// The restore from what `iptables-save` showed to `next`, in one
/// transaction per table: every chain of `next` declared and written,
/// stale `KUBE-*` chains flushed and deleted (with any built-in rule
/// jumping to them), and the built-in jumps of [`JUMPS`] that are missing
/// inserted first in their chains. Established connections live in
/// conntrack, which a restore does not touch.
pub fn reconcile(saved: &Saved, next: &Ruleset) -> Restore {
    let mut sections = Vec::new();
    for name in TABLES {
        let mut s = Section::default();
        let mut wanted = HashSet::new();
        for c in next.chains(name) {
            wanted.insert(c.name.as_str());
            s.declare.push(c.name.clone());
            s.rules.push(c.rules.clone());
        }
        let existing = saved.table(name);
        let stale: Vec<&str> = existing
            .map(|t| {
                t.chains
                    .iter()
                    .filter(|c| c.starts_with(OWNED_PREFIX) && !wanted.contains(c.as_str()))
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default();
        for c in &stale {
            s.declare.push(c.to_string());
            s.delete.push(c.to_string());
        }
        let stale_set: HashSet<&str> = stale.iter().copied().collect();
        if let Some(t) = existing {
            for rule in &t.rules {
                // Every KUBE-* chain is declared (flushed) above; others keep
                // their rules, except jumps to a chain about to be deleted.
                let foreign = !rule.chain().starts_with(OWNED_PREFIX);
                if foreign && rule.target().is_some_and(|tg| stale_set.contains(tg)) {
                    s.unhook.push(format!("-D {}", &rule.line[3..]));
                }
            }
        }
        // Each `-I` goes first, so insert in reverse to keep JUMPS' order.
        for jump in JUMPS.iter().rev().filter(|j| j.table == name) {
            // Any jump from that chain to that target will do (a restarted
            // agent finds its own; kube-proxy's would serve as well).
            let present = existing
                .is_some_and(|t| t.rules.iter().any(|r| r.chain() == jump.chain && r.target() == Some(jump.target)));
            if !present {
                s.hook.push(format!("-I {} {}", jump.chain, jump.spec));
            }
        }
        let existing_rules = existing.map_or(0, |t| t.rules.len());
        sections.push((name, s, existing_rules));
    }
    // Every chain is declared, so there is always something to write.
    finish(sections).unwrap_or_default()
}

/// The restore that removes everything svcnet programmed: the built-in
/// jumps into `KUBE-*` chains, then the chains. `None` when there are none.
pub fn teardown(saved: &Saved) -> Option<Restore> {
    let mut sections = Vec::new();
    for name in TABLES {
        let Some(t) = saved.table(name) else { continue };
        let mut s = Section::default();
        for c in t.chains.iter().filter(|c| c.starts_with(OWNED_PREFIX)) {
            s.declare.push(c.clone());
            s.delete.push(c.clone());
        }
        for rule in &t.rules {
            let owned_chain = rule.chain().starts_with(OWNED_PREFIX);
            if !owned_chain && rule.target().is_some_and(|tg| tg.starts_with(OWNED_PREFIX)) {
                s.unhook.push(format!("-D {}", &rule.line[3..]));
            }
        }
        sections.push((name, s, t.rules.len()));
    }
    finish(sections)
}
