//! The route table: exact names in a hash map, patterns in a [`PatternSet`].
//! A lookup costs one hash probe, then a few for the patterns, whatever the
//! size of the table; captures are computed only for the winning pattern.
//!
//! On top, LiteLLM's Router semantics: `router_settings.model_group_alias`
//! first, then the model as is, then (for a model without a known provider
//! prefix) as `<provider>/<model>` with the provider inferred from its model
//! family; `model: "*"` forwards to the request's own provider.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::contract::GROUP_CLUSTER_PREFIX;
use crate::model::{
    provider_of, Deployment, Endpoint, ListEntry, Pattern, Provider, Shares, Skipped, Target, Timeouts, Unavailable,
};
use crate::route::families::Families;
use crate::route::pattern::substitute;
use crate::route::pattern_set::PatternSet;

/// A model group: a `model_name` listed more than once, or one with
/// `fallbacks`. Its requests go to one Envoy cluster with an endpoint per
/// member, so Envoy's load balancer picks the deployment and its retries
/// fail over; the upstream filter applies each attempt's deployment.
#[derive(Debug)]
pub struct Group {
    pub model_name: String,
    pub cluster: String,
    /// Its own deployments, then those of its fallbacks, at later priorities.
    pub members: Vec<GroupMember>,
    /// Per attempt, whichever deployment it goes to (Envoy takes one limit
    /// per request): the longest of the members' (each its own, else
    /// `router_settings`'); a member without one takes the group's.
    pub timeouts: Timeouts,
    /// Every member's provider takes `stream_options.include_usage`.
    pub inject_stream_usage: bool,
}

/// One endpoint of a group's cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Index into [`Router::deployments`].
    pub deployment: usize,
    /// Envoy's priority: 0 takes all traffic while any of it is up.
    pub priority: u32,
    /// Envoy's `load_balancing_weight` (1 to 1000).
    pub weight: u32,
    /// The model a fallback reaches this pattern deployment as
    /// (`azure/gpt-4o` through `azure/*`), which fills its `*`s.
    pub reached_as: Option<String>,
}

/// The deployment chosen for a model (borrowed from the configuration), where
/// it goes, and the model name to send upstream (borrowed from the
/// configuration or the request's model where it can be).
#[derive(Debug)]
pub struct Route<'c, 'm> {
    /// The (route, provider) pair's position in [`Router::slots`], for
    /// per-route metrics.
    pub slot: usize,
    pub deployment: &'c Deployment,
    /// Set when the model routes to a group: Envoy picks its deployment.
    pub group: Option<&'c Group>,
    /// Where the request goes, or why it cannot (a variable is unset).
    pub endpoint: Result<&'c Endpoint, &'c Unavailable>,
    pub upstream_model: Cow<'m, str>,
    /// The deployment's, else `router_settings`'; a group's for a group.
    pub timeouts: Timeouts,
}

impl<'c> Route<'c, '_> {
    /// The provider the request goes to.
    pub fn provider(&self) -> &'c Provider {
        provider_of(self.endpoint)
    }

    fn into_owned<'any>(route: Route<'c, '_>) -> Route<'c, 'any> {
        Route {
            slot: route.slot,
            deployment: route.deployment,
            group: route.group,
            endpoint: route.endpoint,
            upstream_model: Cow::Owned(route.upstream_model.into_owned()),
            timeouts: route.timeouts,
        }
    }
}

/// Why a model has no route.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute<'c> {
    /// No `model_name` matches it.
    Unknown,
    /// It reached a `model: "*"` deployment, but names no provider llm-router
    /// knows and belongs to no model family.
    NoProvider,
    /// It reached an entry the filter cannot serve (matched as any other,
    /// exact names first, then the most specific pattern), which says why.
    NotServed(&'c Skipped),
}

/// What a `model_name` in the table leads to: a deployment, or an entry
/// the filter cannot serve. Index into [`Router::deployments`] or the
/// skipped entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteTo {
    Deployment(usize),
    NotServed(usize),
}

/// `router_settings.model_group_alias` entry.
#[derive(Debug)]
pub struct Alias {
    pub name: String,
    pub target: String,
    pub hidden: bool,
}

/// Why a table cannot be built.
#[derive(Debug)]
pub enum RouterError {
    /// An alias whose target routes nowhere.
    Alias(Alias),
    /// `model_list[index]` cannot join the group of its `model_name`.
    Member { index: usize, problem: String },
}

/// Something the table takes otherwise than written.
#[derive(Debug, PartialEq, Eq)]
pub enum RouterWarning {
    /// About `model_list[index]`.
    Member { index: usize, text: String },
    /// About the fallbacks of `group` written at document path `path`
    /// (`router_settings.fallbacks[0]`): one not acted on, and why.
    Fallback { path: String, group: String, text: String },
}

/// What [`Router::new`] is built from.
pub struct RouterParts {
    /// The `model_list` entries, in list order: deployments and the entries
    /// the filter cannot serve, routed alike.
    pub entries: Vec<ListEntry>,
    /// Each provider's default endpoint, for `model: "*"` deployments.
    pub provider_endpoints: BTreeMap<String, Result<Endpoint, Unavailable>>,
    /// Every provider name, endpoint or not (a prefix to leave alone).
    pub known_providers: Vec<String>,
    pub families: Families,
    pub aliases: Vec<Alias>,
    /// `fallbacks`: (where they are written, group, its fallback groups in
    /// order).
    pub fallbacks: Vec<(String, String, Vec<String>)>,
    /// `router_settings.timeout` and `stream_timeout`.
    pub default_timeouts: Timeouts,
    /// Why a deployment cannot be reached as a fallback, where it cannot
    /// (the configuration's policy).
    pub fallback_refusal: fn(&Deployment) -> Option<String>,
}

#[derive(Debug)]
pub struct Router {
    deployments: Vec<Deployment>,
    /// The `model_list` position of each deployment.
    positions: Vec<usize>,
    /// The entries the filter cannot serve, in list order.
    skipped: Vec<Skipped>,
    exact: FxHashMap<String, RouteTo>,
    /// What each pattern leads to, in `patterns` order.
    pattern_owners: Vec<RouteTo>,
    patterns: PatternSet,
    provider_endpoints: BTreeMap<String, Result<Endpoint, Unavailable>>,
    known_providers: FxHashSet<String>,
    families: Families,
    aliases: FxHashMap<String, Alias>,
    /// Each deployment's first metrics slot; a `model: "*"` one has one per
    /// provider endpoint, in `provider_endpoints` order.
    first_slot: Vec<usize>,
    /// `(model_name, provider)` of every slot.
    slots: Vec<(String, String)>,
    /// The deployment index of every slot.
    slot_owners: Vec<usize>,
    groups: Vec<Group>,
    /// The group of each deployment a name routes to (the first of its name).
    group_of: Vec<Option<usize>>,
    default_timeouts: Timeouts,
    by_id: FxHashMap<String, usize>,
}

/// The table's entries split by kind, each name filed once.
struct Listed {
    deployments: Vec<Deployment>,
    positions: Vec<usize>,
    skipped: Vec<Skipped>,
    names: Names,
    /// The deployments of each served name, under the index of its first.
    named: BTreeMap<usize, Vec<usize>>,
    by_id: FxHashMap<String, usize>,
}

impl Listed {
    fn new(entries: Vec<ListEntry>) -> Result<Listed, RouterError> {
        let mut listed = Listed {
            deployments: Vec::with_capacity(entries.len()),
            positions: Vec::with_capacity(entries.len()),
            skipped: Vec::new(),
            names: Names::default(),
            named: BTreeMap::new(),
            by_id: FxHashMap::default(),
        };
        let mut first_of_name: HashMap<String, usize> = HashMap::new();
        for (position, entry) in entries.into_iter().enumerate() {
            let d = match entry {
                ListEntry::Served(d) => d,
                ListEntry::Skipped(s) => {
                    listed.names.file(
                        &s.model_name,
                        s.pattern.as_ref(),
                        RouteTo::NotServed(listed.skipped.len()),
                    );
                    listed.skipped.push(s);
                    continue;
                }
            };
            let index = listed.deployments.len();
            listed
                .names
                .file(&d.model_name, d.pattern.as_ref(), RouteTo::Deployment(index));
            let first = *first_of_name.entry(d.model_name.clone()).or_insert(index);
            listed.named.entry(first).or_default().push(index);
            if let Some(earlier) = listed.by_id.insert(d.id.clone(), index) {
                let earlier = listed.positions.get(earlier).copied().unwrap_or_default();
                let problem = format!("model_info.id `{}` is also model_list[{earlier}]'s", d.id);
                return Err(RouterError::Member {
                    index: position,
                    problem,
                });
            }
            listed.deployments.push(d);
            listed.positions.push(position);
        }
        Ok(listed)
    }
}

/// Every `model_name` and what it leads to: exact names by hash, patterns in
/// list order (the first listed wins a tie).
#[derive(Default)]
struct Names {
    exact: FxHashMap<String, RouteTo>,
    patterns: Vec<Pattern>,
    owners: Vec<RouteTo>,
    pattern_position: HashMap<String, usize>,
}

impl Names {
    /// Files an entry under its name: the first of its name, except that a
    /// deployment takes the place of an entry of its name that is not served.
    fn file(&mut self, name: &str, pattern: Option<&Pattern>, to: RouteTo) {
        let owner = match pattern {
            None => self.exact.entry(name.to_owned()).or_insert(to),
            Some(pattern) => {
                let position = *self.pattern_position.entry(name.to_owned()).or_insert_with(|| {
                    self.patterns.push(pattern.clone());
                    self.owners.push(to);
                    self.owners.len() - 1
                });
                let Some(owner) = self.owners.get_mut(position) else {
                    return;
                };
                owner
            }
        };
        if matches!((*owner, to), (RouteTo::NotServed(_), RouteTo::Deployment(_))) {
            *owner = to;
        }
    }
}

/// The metrics slots: one per deployment, one per provider endpoint for a
/// `model: "*"` deployment.
struct Slots {
    first_slot: Vec<usize>,
    slots: Vec<(String, String)>,
    slot_owners: Vec<usize>,
}

impl Slots {
    fn new(deployments: &[Deployment], provider_endpoints: &BTreeMap<String, Result<Endpoint, Unavailable>>) -> Slots {
        let mut first_slot = Vec::with_capacity(deployments.len());
        let mut slots = Vec::with_capacity(deployments.len());
        let mut slot_owners = Vec::with_capacity(deployments.len());
        for (index, d) in deployments.iter().enumerate() {
            first_slot.push(slots.len());
            match d.target.reach() {
                Some(reach) => slots.push((d.model_name.clone(), provider_of(reach).name.clone())),
                None => slots.extend(provider_endpoints.keys().map(|p| (d.model_name.clone(), p.clone()))),
            }
            slot_owners.resize(slots.len(), index);
        }
        Slots {
            first_slot,
            slots,
            slot_owners,
        }
    }
}

impl Router {
    /// Builds the table. Entries sharing a `model_name` form a group, as do
    /// names with `fallbacks`; the name routes to its first entry, and to the
    /// group when there is one.
    pub fn new(parts: RouterParts, warnings: &mut Vec<RouterWarning>) -> Result<Router, RouterError> {
        let RouterParts {
            entries,
            provider_endpoints,
            known_providers,
            families,
            aliases,
            fallbacks,
            default_timeouts,
            fallback_refusal,
        } = parts;
        let listed = Listed::new(entries)?;
        let Slots {
            first_slot,
            slots,
            slot_owners,
        } = Slots::new(&listed.deployments, &provider_endpoints);
        let mut router = Router {
            group_of: vec![None; listed.deployments.len()],
            deployments: listed.deployments,
            positions: listed.positions,
            skipped: listed.skipped,
            exact: listed.names.exact,
            pattern_owners: listed.names.owners,
            patterns: PatternSet::new(listed.names.patterns),
            provider_endpoints,
            known_providers: known_providers.into_iter().collect(),
            families,
            aliases: FxHashMap::default(),
            first_slot,
            slots,
            slot_owners,
            groups: Vec::new(),
            by_id: listed.by_id,
            default_timeouts,
        };
        for alias in aliases {
            // An alias of an entry the filter cannot serve routes there too.
            if let Err(NoRoute::Unknown | NoRoute::NoProvider) = router.route(&alias.target) {
                return Err(RouterError::Alias(alias));
            }
            router.aliases.insert(alias.name.clone(), alias);
        }
        // Fallback targets are looked up as LiteLLM's Router looks up a
        // model (ids, names, aliases, patterns), before any group exists.
        let groups = build_groups(&router, &listed.named, &fallbacks, fallback_refusal, warnings)?;
        for (position, group) in groups.iter().enumerate() {
            let first = group.members.first().map(|m| m.deployment);
            if let Some(slot) = first.and_then(|first| router.group_of.get_mut(first)) {
                *slot = Some(position);
            }
        }
        router.groups = groups;
        Ok(router)
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The id of the deployment with metrics slot `slot` (`None` for a
    /// `model: "*"` deployment's slots, which no group has).
    pub fn deployment_of_slot(&self, slot: usize) -> Option<&str> {
        let d = self.deployments.get(*self.slot_owners.get(slot)?)?;
        d.target.reach().is_some().then_some(d.id.as_str())
    }

    /// The deployment that owns metrics slot `slot`.
    pub fn slot_owner(&self, slot: usize) -> Option<&Deployment> {
        self.deployments.get(*self.slot_owners.get(slot)?)
    }

    /// The metrics slot of the deployment named `id`.
    pub fn slot_of(&self, id: &str) -> Option<usize> {
        self.first_slot.get(*self.by_id.get(id)?).copied()
    }

    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// `(model_name, provider)` of each metrics slot ([`Route::slot`]).
    pub fn slots(&self) -> &[(String, String)] {
        &self.slots
    }

    /// The entries the filter cannot serve, in list order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The `model_list` position of deployment `index`.
    fn position(&self, index: usize) -> usize {
        self.positions.get(index).copied().unwrap_or(index)
    }

    /// Every endpoint a request is sent to directly. A group's own
    /// deployments are reached only through the group's cluster (a name
    /// listed more than once routes to its group, all of its entries
    /// members); a fallback member is reached directly by its own name.
    /// An unavailable deployment has none.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        let grouped: FxHashSet<&str> = self.groups.iter().map(|g| g.model_name.as_str()).collect();
        let fixed = self.deployments.iter().filter_map(move |d| match &d.target {
            Target::Fixed(endpoint) if !grouped.contains(d.model_name.as_str()) => Some(endpoint),
            _ => None,
        });
        fixed.chain(self.provider_endpoints.values().filter_map(|reach| reach.as_ref().ok()))
    }

    /// The provider prefixes a `model: "*"` deployment forwards to.
    pub fn forwarded_prefixes(&self) -> Vec<&str> {
        self.provider_endpoints.keys().map(String::as_str).collect()
    }

    /// An alias first; then exact names; then the matching pattern with the
    /// most literal characters, the first listed on a tie; then, for a model
    /// without a known provider prefix, the patterns again with the provider
    /// of its model family in front (`gpt-4o` as `openai/gpt-4o`).
    pub fn route<'c: 'm, 'm>(&'c self, model: &'m str) -> Result<Route<'c, 'm>, NoRoute<'c>> {
        let (index, matched) = self.find_deployment(model)?;
        self.resolve_as(index, matched)
    }

    /// [`Router::resolve`] for a name that may be the router's own.
    fn resolve_as<'c: 'm, 'm>(&'c self, index: usize, name: Cow<'m, str>) -> Result<Route<'c, 'm>, NoRoute<'c>> {
        match name {
            Cow::Borrowed(name) => self.resolve(index, name),
            Cow::Owned(name) => self.resolve(index, &name).map(Route::into_owned),
        }
    }

    /// The route of one attempt of a group's request: through deployment
    /// `id` (the endpoint Envoy chose), for the request's `model`. A member
    /// of the model's own group takes the model as the group matched it; a
    /// fallback's member takes the model its fallback names (its own exact
    /// `model_name`, or the model a pattern serves). `id` must be a member
    /// of the model's group.
    pub fn route_via<'c: 'm, 'm>(&'c self, id: &str, model: &'m str) -> Result<Route<'c, 'm>, NoRoute<'c>> {
        let index = *self.by_id.get(id).ok_or(NoRoute::Unknown)?;
        let deployment = self.deployments.get(index).ok_or(NoRoute::Unknown)?;
        let (first, matched) = self.find_deployment(model).map_err(|_| NoRoute::Unknown)?;
        let group = self.group_routed_from(first).ok_or(NoRoute::Unknown)?;
        let member = group
            .members
            .iter()
            .find(|m| m.deployment == index)
            .ok_or(NoRoute::Unknown)?;
        let own = self
            .deployments
            .get(first)
            .is_some_and(|d| d.model_name == deployment.model_name);
        match &member.reached_as {
            _ if own => self.resolve_as(index, matched),
            Some(reached_as) => self.resolve(index, reached_as),
            None => self.resolve(index, &deployment.model_name),
        }
    }

    /// The deployment a model routes to, and the name it matched as; or why
    /// there is none.
    fn find_deployment<'c: 'm, 'm>(&'c self, model: &'m str) -> Result<(usize, Cow<'m, str>), NoRoute<'c>> {
        match self.find(model)? {
            (RouteTo::Deployment(index), matched) => Ok((index, matched)),
            (RouteTo::NotServed(index), _) => Err(self.skipped.get(index).map_or(NoRoute::Unknown, NoRoute::NotServed)),
        }
    }

    /// The entry a model routes to, and the name it matched as (the alias
    /// target, or the model with its family's provider in front).
    fn find<'c: 'm, 'm>(&'c self, model: &'m str) -> Result<(RouteTo, Cow<'m, str>), NoRoute<'c>> {
        let model = self.aliases.get(model).map_or(model, |alias| alias.target.as_str());
        if let Some(&to) = self.exact.get(model) {
            return Ok((to, Cow::Borrowed(model)));
        }
        if let Some(to) = self.best_pattern(model) {
            return Ok((to, Cow::Borrowed(model)));
        }
        if self.has_known_prefix(model) {
            return Err(NoRoute::Unknown);
        }
        let provider = self.families.provider_of(model).ok_or(NoRoute::Unknown)?;
        let prefixed = format!("{provider}/{model}");
        let index = self.best_pattern(&prefixed).ok_or(NoRoute::Unknown)?;
        Ok((index, Cow::Owned(prefixed)))
    }

    fn best_pattern(&self, model: &str) -> Option<RouteTo> {
        self.pattern_owners.get(self.patterns.best_match(model)?).copied()
    }

    fn has_known_prefix(&self, model: &str) -> bool {
        model
            .split_once('/')
            .is_some_and(|(prefix, _)| self.known_providers.contains(prefix))
    }

    /// The group that deployment `index` (the first of its name) routes to.
    fn group_routed_from(&self, index: usize) -> Option<&Group> {
        self.groups.get((*self.group_of.get(index)?)?)
    }

    /// The route through deployment `index` for `model`, which it matches.
    fn resolve<'c: 'm, 'm>(&'c self, index: usize, model: &'m str) -> Result<Route<'c, 'm>, NoRoute<'c>> {
        let deployment = self.deployments.get(index).ok_or(NoRoute::Unknown)?;
        let first_slot = self.first_slot.get(index).copied().unwrap_or_default();
        let group = self.group_routed_from(index);
        let timeouts = group.map_or(deployment.timeouts.or(self.default_timeouts), |g| g.timeouts);
        let upstream_model = if !deployment.target_has_stars {
            Cow::Borrowed(deployment.upstream_model.as_str())
        } else {
            let Some(captures) = deployment.pattern.as_ref().and_then(|p| p.captures(model)) else {
                return Err(NoRoute::Unknown);
            };
            match captures.as_slice() {
                // `groq/*` → `groq/*`: the upstream model is the capture itself.
                [capture] if deployment.upstream_model == "*" => Cow::Borrowed(*capture),
                _ => Cow::Owned(substitute(&deployment.upstream_model, &captures)),
            }
        };
        match deployment.target.reach() {
            Some(endpoint) => Ok(Route {
                slot: first_slot,
                deployment,
                group,
                endpoint,
                upstream_model,
                timeouts,
            }),
            None => {
                let (provider, upstream_model) = self.request_provider(upstream_model).ok_or(NoRoute::NoProvider)?;
                let (position, (_, endpoint)) = self
                    .provider_endpoints
                    .iter()
                    .enumerate()
                    .find(|(_, (name, _))| name.as_str() == provider)
                    .ok_or(NoRoute::NoProvider)?;
                Ok(Route {
                    slot: first_slot + position,
                    deployment,
                    group,
                    endpoint: endpoint.as_ref(),
                    upstream_model,
                    timeouts,
                })
            }
        }
    }

    /// `provider/model` → (provider, model); a bare model → its family's
    /// provider and the model as is.
    fn request_provider<'m>(&self, model: Cow<'m, str>) -> Option<(String, Cow<'m, str>)> {
        if let Some((prefix, rest)) = model.split_once('/') {
            if self.provider_endpoints.contains_key(prefix) {
                let provider = prefix.to_owned();
                let rest = match model {
                    Cow::Borrowed(model) => Cow::Borrowed(model.get(prefix.len() + 1..)?),
                    Cow::Owned(_) => Cow::Owned(rest.to_owned()),
                };
                return Some((provider, rest));
            }
        }
        let provider = self.families.provider_of(&model)?.to_owned();
        Some((provider, model))
    }

    /// The OpenAI model object for `GET /v1/models/{id}`: a `model_name` or
    /// alias as written, or any model this table routes (owned by the
    /// provider it would go to).
    pub fn model_object(&self, id: &str) -> Option<Vec<u8>> {
        let owner = match self.deployments.iter().find(|d| d.model_name == id) {
            Some(listed) => Self::owner(listed),
            None => self.route(id).ok()?.provider().name.as_str(),
        };
        Some(model_json(id, owner).to_string().into_bytes())
    }

    /// A listed deployment's `owned_by`: its provider, or `llm-router` for
    /// one that forwards to the request's own provider.
    fn owner(deployment: &Deployment) -> &str {
        match deployment.target.reach() {
            Some(reach) => &provider_of(reach).name,
            None => "llm-router",
        }
    }

    /// The OpenAI `GET /v1/models` list: every model_name as written, then
    /// every alias not marked hidden.
    pub fn models_reply(&self) -> Vec<u8> {
        self.models_reply_where(|_, _| true)
    }

    /// The `GET /v1/models` list of what `shown(id, deployment)` lets a
    /// caller see (`deployment` is the one `id` routes to).
    pub fn models_reply_where(&self, shown: impl Fn(&str, &Deployment) -> bool) -> Vec<u8> {
        let listed = self
            .deployments
            .iter()
            .enumerate()
            .filter(|(index, d)| match &d.pattern {
                None => self.exact.get(&d.model_name) == Some(&RouteTo::Deployment(*index)),
                Some(_) => self.pattern_owners.contains(&RouteTo::Deployment(*index)),
            })
            .filter(|(_, d)| shown(&d.model_name, d))
            .map(|(_, d)| model_json(&d.model_name, Self::owner(d)));
        let mut aliases: Vec<&Alias> = self.aliases.values().filter(|a| !a.hidden).collect();
        aliases.sort_by(|a, b| a.name.cmp(&b.name));
        let aliases = aliases.into_iter().filter_map(|alias| {
            let route = self.route(&alias.name).ok()?;
            shown(&alias.name, route.deployment).then(|| model_json(&alias.name, &route.provider().name))
        });
        let data: Vec<serde_json::Value> = listed.chain(aliases).collect();
        serde_json::json!({"object": "list", "data": data})
            .to_string()
            .into_bytes()
    }
}

/// One fallback of a group, as the table reaches it.
struct FallbackTier<'f> {
    /// Where it is written, for a warning.
    path: &'f str,
    group: &'f str,
    target: &'f str,
    /// The deployments it adds, in list order.
    deployments: Vec<usize>,
    /// The model a pattern deployment is reached as.
    reached_as: Option<String>,
}

impl Router {
    /// The deployments fallback `target` of the group first listed at
    /// `source` reaches, as LiteLLM's Router finds a model: a deployment's
    /// `model_info.id` first, then a name (an alias, an exact model_name, a
    /// pattern). `Err` says why it cannot be a fallback.
    fn fallback_reach(
        &self,
        source: usize,
        target: &str,
        named: &BTreeMap<usize, Vec<usize>>,
        refusal: fn(&Deployment) -> Option<String>,
    ) -> Result<(Vec<usize>, Option<String>), String> {
        let (first, set, reached_as) = match self.by_id.get(target) {
            Some(&index) => (index, vec![index], None),
            None => {
                let (first, matched) = self.find_deployment(target).map_err(|e| match e {
                    NoRoute::NotServed(_) => "is not served (see its entry's warning)".to_owned(),
                    NoRoute::Unknown | NoRoute::NoProvider => {
                        "is no model_name, model_info.id, alias or model a pattern serves".to_owned()
                    }
                })?;
                let set = named.get(&first).cloned().unwrap_or_default();
                let pattern = self.deployments.get(first).is_some_and(|d| d.pattern.is_some());
                (first, set, pattern.then(|| matched.into_owned()))
            }
        };
        if first == source {
            return Err("is the group itself".to_owned());
        }
        for d in set.iter().filter_map(|&index| self.deployments.get(index)) {
            if d.pattern.is_some() && reached_as.is_none() {
                return Err(format!(
                    "is the model_info.id of pattern `{}`, which needs a model to fill its `*`: name a model it serves",
                    d.model_name
                ));
            }
            if d.target == Target::RequestProvider {
                return Err(format!(
                    "is served by `{}` (`model: \"*\"`), which has no address of its own for Envoy to fail over to",
                    d.model_name
                ));
            }
            if let Some(why) = refusal(d) {
                return Err(why);
            }
        }
        Ok((set, reached_as))
    }
}

/// Each group's fallbacks as the table reaches them, by the group's first
/// entry; one it cannot reach is left out with a warning.
fn fallback_tiers<'f>(
    router: &Router,
    named: &BTreeMap<usize, Vec<usize>>,
    fallbacks: &'f [(String, String, Vec<String>)],
    refusal: fn(&Deployment) -> Option<String>,
    warnings: &mut Vec<RouterWarning>,
) -> BTreeMap<usize, Vec<FallbackTier<'f>>> {
    let mut tiers: BTreeMap<usize, Vec<FallbackTier>> = BTreeMap::new();
    for (path, group, targets) in fallbacks {
        let warn = |text: String| RouterWarning::Fallback {
            path: path.clone(),
            group: group.clone(),
            text,
        };
        let source = named.keys().copied().find(|&first| {
            let d = router.deployments.get(first);
            d.is_some_and(|d| d.model_name == *group && d.target != Target::RequestProvider)
        });
        let Some(source) = source else {
            warnings.push(warn(format!(
                "`{group}` is no model_name with an address of its own (a `model: \"*\"` entry has none): its fallbacks are not acted on"
            )));
            continue;
        };
        for target in targets {
            match router.fallback_reach(source, target, named, refusal) {
                Ok((deployments, reached_as)) => tiers.entry(source).or_default().push(FallbackTier {
                    path,
                    group,
                    target,
                    deployments,
                    reached_as,
                }),
                Err(why) => warnings.push(warn(format!("fallback `{target}` {why}; left out"))),
            }
        }
    }
    tiers
}

/// The groups of a table, in list order: every name listed more than once,
/// and every name with fallbacks.
fn build_groups(
    router: &Router,
    named: &BTreeMap<usize, Vec<usize>>,
    fallbacks: &[(String, String, Vec<String>)],
    refusal: fn(&Deployment) -> Option<String>,
    warnings: &mut Vec<RouterWarning>,
) -> Result<Vec<Group>, RouterError> {
    let deployments = router.deployments.as_slice();
    let model_name = |index: usize| deployments.get(index).map_or("", |d| d.model_name.as_str());
    let fallbacks_of = fallback_tiers(router, named, fallbacks, refusal, warnings);
    let mut groups = Vec::new();
    let mut clusters = FxHashSet::default();
    for (&first, own) in named {
        let targets = fallbacks_of.get(&first).map(Vec::as_slice).unwrap_or_default();
        if own.len() < 2 && targets.is_empty() {
            continue;
        }
        let mut members = Vec::new();
        let mut next_priority = tier(router, own, 0, None, &mut members, warnings)?;
        for fallback in targets {
            // A deployment is one endpoint of the cluster, at its first priority.
            let new: Vec<usize> = fallback
                .deployments
                .iter()
                .copied()
                .filter(|&index| members.iter().all(|m| m.deployment != index))
                .collect();
            if new.is_empty() {
                warnings.push(RouterWarning::Fallback {
                    path: fallback.path.to_owned(),
                    group: fallback.group.to_owned(),
                    text: format!(
                        "fallback `{}` adds no deployment the group does not have already; left out",
                        fallback.target
                    ),
                });
                continue;
            }
            let reached_as = fallback.reached_as.as_deref();
            next_priority = tier(router, &new, next_priority, reached_as, &mut members, warnings)?;
        }
        // One limit for every attempt (Envoy reads it once per request).
        let timeouts = members
            .iter()
            .filter_map(|m| Some(deployments.get(m.deployment)?.timeouts.or(router.default_timeouts)))
            .reduce(Timeouts::longest)
            .unwrap_or(router.default_timeouts);
        let inject_stream_usage = members.iter().all(|m| {
            let reach = deployments.get(m.deployment).and_then(|d| d.target.reach());
            reach.is_some_and(|reach| provider_of(reach).inject_stream_usage)
        });
        let base = format!("{GROUP_CLUSTER_PREFIX}{}", cluster_safe(model_name(first)));
        let mut cluster = base.clone();
        for n in 2.. {
            if clusters.insert(cluster.clone()) {
                break;
            }
            cluster = format!("{base}_{n}");
        }
        groups.push(Group {
            model_name: model_name(first).to_owned(),
            cluster,
            members,
            timeouts,
            inject_stream_usage,
        });
    }
    Ok(groups)
}

/// Adds the deployments of one name (or one fallback) to a group, from
/// priority `base` on: one priority per distinct `order` (those without
/// last); returns the next free priority.
fn tier(
    router: &Router,
    set: &[usize],
    base: u32,
    reached_as: Option<&str>,
    members: &mut Vec<GroupMember>,
    warnings: &mut Vec<RouterWarning>,
) -> Result<u32, RouterError> {
    let mut listed = Vec::with_capacity(set.len());
    for &index in set {
        let Some(d) = router.deployments.get(index) else {
            continue;
        };
        if d.target == Target::RequestProvider {
            return Err(RouterError::Member {
                index: router.position(index),
                problem: "a `model: \"*\"` deployment cannot share its model_name, take fallbacks or be one: it has no address of its own for Envoy to balance".to_owned(),
            });
        }
        listed.push((index, d));
    }
    let rank = |order: Option<u32>| order.map_or(u64::MAX, u64::from);
    let mut orders: Vec<u64> = listed.iter().map(|(_, d)| rank(d.order)).collect();
    orders.sort_unstable();
    orders.dedup();
    let positioned: Vec<(usize, &Deployment)> = listed.iter().map(|&(i, d)| (router.position(i), d)).collect();
    let weights = weights(&positioned, warnings);
    for ((index, d), weight) in listed.iter().zip(weights) {
        let position = orders.iter().position(|&o| o == rank(d.order)).unwrap_or_default();
        members.push(GroupMember {
            deployment: *index,
            priority: base + position as u32,
            weight,
            reached_as: reached_as.map(str::to_owned),
        });
    }
    Ok(base + orders.len() as u32)
}

/// Envoy weights (1 to 1000) for the deployments of one name, by LiteLLM's
/// simple-shuffle: `weight` if any sets it, else `rpm`, else `tpm`, else
/// equal; `listed` holds each one's `model_list` position. One left without the key its group uses gets the smallest share
/// (LiteLLM gives it none; Envoy has no weight 0).
fn weights(listed: &[(usize, &Deployment)], warnings: &mut Vec<RouterWarning>) -> Vec<u32> {
    let keys: [(&str, fn(&Shares) -> Option<f64>); 3] =
        [("weight", |s| s.weight), ("rpm", |s| s.rpm), ("tpm", |s| s.tpm)];
    let Some((key, read)) = keys
        .into_iter()
        .find(|(_, read)| listed.iter().any(|(_, d)| read(&d.shares).is_some()))
    else {
        return vec![1; listed.len()];
    };
    let raw: Vec<f64> = listed
        .iter()
        .map(|(_, d)| read(&d.shares).unwrap_or(0.0).max(0.0))
        .collect();
    let most = raw.iter().copied().fold(0.0, f64::max);
    if most <= 0.0 {
        return vec![1; listed.len()];
    }
    for ((index, d), share) in listed.iter().zip(&raw) {
        if *share <= 0.0 {
            warnings.push(RouterWarning::Member {
                index: *index,
                text: format!(
                    "model_list[{index}] (model_name `{}`) has no {key} while others of its name do: it gets the smallest share (1 in 1000)",
                    d.model_name
                ),
            });
        }
    }
    raw.iter()
        .map(|share| ((share / most) * 1000.0).round().clamp(1.0, 1000.0) as u32)
        .collect()
}

/// A cluster name from a model name: letters, digits, `-` and `_` kept,
/// anything else `_` (Envoy's stats split names at `.`).
fn cluster_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn model_json(id: &str, owned_by: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{compile_test, SEED};

    fn route(config_json: &str, model: &str) -> Option<(String, String, String)> {
        let config = compile_test(config_json).expect("test config compiles");
        config.router.route(model).ok().map(|r| {
            (
                r.deployment.model_name.clone(),
                // An unavailable deployment would go to its provider's own cluster.
                r.endpoint
                    .map_or_else(|u| u.provider.cluster.clone(), |e| e.cluster.clone()),
                r.upstream_model.into_owned(),
            )
        })
    }

    /// (request model, the expected (model_name, cluster, upstream model)).
    type RouteRows<'a> = &'a [(&'a str, Option<(&'a str, &'a str, &'a str)>)];

    /// The `/v1/models` answer is these (id, owned_by) pairs, in order.
    fn assert_listed(config: &crate::config::Config, expected: &[(&str, &str)]) {
        let models: serde_json::Value = serde_json::from_slice(&config.models_reply).expect("json");
        let field = |m: &serde_json::Value, key: &str| m[key].as_str().unwrap_or("").to_owned();
        let data = models["data"].as_array().expect("array");
        let listed: Vec<(String, String)> = data.iter().map(|m| (field(m, "id"), field(m, "owned_by"))).collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(listed, expected);
    }

    fn assert_routes(config_json: &str, rows: RouteRows) {
        for (model, expected) in rows {
            let expected = expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
            assert_eq!(route(config_json, model), expected, "model {model:?}");
        }
    }

    fn deployment(model_name: &str, target: &str) -> String {
        format!(r#"{{"model_name": {model_name:?}, "litellm_params": {{"model": {target:?}, "api_key": "k"}}}}"#)
    }

    #[test]
    fn the_seed_examples() {
        let rows: RouteRows = &[
            (
                "anthropic/claude-3-sonnet-20240229",
                Some(("anthropic/*", "anthropic", "claude-3-sonnet-20240229")),
            ),
            ("groq/llama3-8b-8192", Some(("groq/*", "groq", "llama3-8b-8192"))),
            (
                "fo::hi::static::hi",
                Some(("fo::*:static::*", "openai", "fo::hi::static::hi")),
            ),
            ("openai/gpt-4o", None),
            ("anthropic/", Some(("anthropic/*", "anthropic", ""))),
            ("groq/a/b/c", Some(("groq/*", "groq", "a/b/c"))),
            ("Groq/llama3", None),
            ("xgroq/llama3", None),
            ("", None),
        ];
        assert_routes(SEED, rows);
    }

    #[test]
    fn precedence() {
        let config = format!(
            r#"{{"model_list": [{}, {}, {}, {}, {}, {}]}}"#,
            deployment("*", "openai/catch-all"),
            deployment("gpt-*", "openai/gpt-*"),
            deployment("gpt-4*", "openai/four-*"),
            deployment("gpt-4o", "openai/exact-4o"),
            deployment("*-mini", "openai/mini-*"),
            deployment("gpt*", "openai/tie-*"),
        );
        let rows = [
            ("gpt-4o", "exact-4o"),         // exact beats every pattern
            ("gpt-4o-mini", "four-o-mini"), // 5 literals beat 4 (`gpt-`) and 5 later (`-mini` ties, listed later)
            ("gpt-3.5", "gpt-3.5"),         // `gpt-` (4) beats `gpt` (3) and `*` (0)
            ("o1-mini", "mini-o1"),
            ("claude", "catch-all"),
        ];
        for (model, upstream) in rows {
            assert_eq!(
                route(&config, model).map(|r| r.2).as_deref(),
                Some(upstream),
                "model {model}"
            );
        }
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        let config = format!(
            r#"{{"model_list": [{}, {}]}}"#,
            deployment("a*c", "openai/first-*"),
            deployment("ab*", "openai/second-*"),
        );
        assert_eq!(route(&config, "abc").map(|r| r.2).as_deref(), Some("first-b"));
    }

    #[test]
    fn a_target_without_stars_is_used_as_is() {
        let config = format!(r#"{{"model_list": [{}]}}"#, deployment("fast/*", "groq/llama3-8b-8192"));
        assert_eq!(
            route(&config, "fast/anything").map(|r| r.2).as_deref(),
            Some("llama3-8b-8192")
        );
    }

    #[test]
    fn repeated_names_form_groups_listed_once() {
        let json = format!(
            r#"{{"model_list": [{}, {}, {}, {}, {}]}}"#,
            deployment("m", "openai/one"),
            deployment("m", "groq/two"),
            deployment("p/*", "openai/*"),
            deployment("p/*", "groq/*"),
            deployment("single", "openai/s"),
        );
        let config = compile_test(&json).expect("compiles");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let groups: Vec<(&str, &str, Vec<usize>)> = config
            .router
            .groups()
            .iter()
            .map(|g| {
                (
                    g.model_name.as_str(),
                    g.cluster.as_str(),
                    g.members.iter().map(|m| m.deployment).collect(),
                )
            })
            .collect();
        assert_eq!(groups, [("m", "group_m", vec![0, 1]), ("p/*", "group_p__", vec![2, 3])]);
        let group_of = |model: &str| {
            config
                .router
                .route(model)
                .ok()
                .and_then(|r| r.group.map(|g| g.model_name.clone()))
        };
        assert_eq!(group_of("m").as_deref(), Some("m"));
        assert_eq!(group_of("p/x").as_deref(), Some("p/*"));
        assert_eq!(group_of("single"), None);
        let models: serde_json::Value = serde_json::from_slice(&config.router.models_reply()).expect("json");
        assert_eq!(models["data"].as_array().map(Vec::len), Some(3));
    }

    /// (model_name, cluster, [(deployment id, priority, weight)]) of each group.
    type GroupRows<'a> = &'a [(&'a str, &'a str, &'a [(&'a str, u32, u32)])];

    fn assert_groups(config_json: &str, expected: GroupRows) {
        let config = compile_test(config_json).expect("compiles");
        let router = &config.router;
        let got: Vec<(String, String, Vec<(String, u32, u32)>)> = router
            .groups()
            .iter()
            .map(|g| {
                let members = g
                    .members
                    .iter()
                    .map(|m| (router.deployments()[m.deployment].id.clone(), m.priority, m.weight))
                    .collect();
                (g.model_name.clone(), g.cluster.clone(), members)
            })
            .collect();
        let expected: Vec<(String, String, Vec<(String, u32, u32)>)> = expected
            .iter()
            .map(|(name, cluster, members)| {
                let members = members.iter().map(|(id, p, w)| (id.to_string(), *p, *w)).collect();
                (name.to_string(), cluster.to_string(), members)
            })
            .collect();
        assert_eq!(got, expected, "{config_json}");
    }

    fn entry(model_name: &str, target: &str, params: &str) -> String {
        format!(
            r#"{{"model_name": {model_name:?}, "litellm_params": {{"model": {target:?}, "api_key": "k"{params}}}}}"#
        )
    }

    #[test]
    fn groups_take_litellms_shares_orders_and_fallbacks() {
        let list = |entries: &[String], settings: &str| {
            format!(
                r#"{{"model_list": [{}], "router_settings": {{{settings}}}}}"#,
                entries.join(", ")
            )
        };
        // weight, else rpm, else tpm, else equal; scaled to Envoy's 1..1000
        let shares = [
            (r#", "weight": 3"#, r#", "weight": 1"#, 1000, 333),
            (r#", "rpm": 900"#, r#", "rpm": 100"#, 1000, 111),
            (r#", "tpm": 10, "weight": 2"#, r#", "tpm": 90"#, 1000, 1),
            ("", "", 1, 1),
        ];
        for (a, b, weight_a, weight_b) in shares {
            let json = list(&[entry("m", "openai/a", a), entry("m", "groq/b", b)], "");
            assert_groups(
                &json,
                &[("m", "group_m", &[("m#1", 0, weight_a), ("m#2", 0, weight_b)])],
            );
        }
        // order: one priority per distinct value, lowest first, none last;
        // then each fallback group's, in the order listed
        let json = list(
            &[
                entry("m", "openai/a", r#", "order": 2"#),
                entry("m", "openai/b", ""),
                entry("m", "openai/c", r#", "order": 1"#),
                entry("m", "openai/d", r#", "order": 2"#),
                entry("f.1", "groq/e", ""),
                entry("f2", "groq/f", r#", "order": 5"#),
                entry("f2", "groq/g", r#", "order": 7"#),
            ],
            r#""fallbacks": [{"m": ["f.1", "f2"]}]"#,
        );
        assert_groups(
            &json,
            &[
                (
                    "m",
                    "group_m",
                    &[
                        ("m#1", 1, 1),
                        ("m#2", 2, 1),
                        ("m#3", 0, 1),
                        ("m#4", 1, 1),
                        ("f.1#1", 3, 1),
                        ("f2#1", 4, 1),
                        ("f2#2", 5, 1),
                    ],
                ),
                ("f2", "group_f2", &[("f2#1", 0, 1), ("f2#2", 1, 1)]),
            ],
        );
        // a single deployment with fallbacks is a group; model_info.id names it;
        // names that clean up alike get distinct clusters
        let json = format!(
            r#"{{"model_list": [{}, {}, {}, {}], "router_settings": {{"fallbacks": [{{"a.b": ["x"]}}, {{"a_b": ["x"]}}]}}}}"#,
            r#"{"model_name": "a.b", "litellm_params": {"model": "openai/a", "api_key": "k"}, "model_info": {"id": "primary"}}"#,
            entry("a_b", "openai/b", ""),
            entry("x", "groq/x", ""),
            entry("single", "groq/s", ""),
        );
        assert_groups(
            &json,
            &[
                ("a.b", "group_a_b", &[("primary", 0, 1), ("x#1", 1, 1)]),
                ("a_b", "group_a_b_2", &[("a_b#1", 0, 1), ("x#1", 1, 1)]),
            ],
        );
    }

    #[test]
    fn each_attempt_routes_through_the_deployment_envoy_chose() {
        let json = format!(
            r#"{{"model_list": [{}, {}, {}, {}], "router_settings": {{"fallbacks": [{{"p/*": ["fb"]}}], "model_group_alias": {{"alias": "p/x"}}}}}}"#,
            entry("p/*", "openai/*", ""),
            entry("p/*", "groq/pre-*", ""),
            entry("fb", "anthropic/claude", ""),
            entry("other", "openai/o", ""),
        );
        let config = compile_test(&json).expect("compiles");
        let via = |id: &str, model: &str| {
            config
                .router
                .route_via(id, model)
                .ok()
                .map(|r| (r.provider().name.clone(), r.upstream_model.into_owned()))
        };
        let some = |p: &str, m: &str| Some((p.to_owned(), m.to_owned()));
        assert_eq!(via("p/*#1", "p/x"), some("openai", "x"));
        assert_eq!(via("p/*#2", "p/x"), some("groq", "pre-x"));
        assert_eq!(via("p/*#2", "alias"), some("groq", "pre-x"));
        // a fallback takes its own model
        assert_eq!(via("fb#1", "p/x"), some("anthropic", "claude"));
        // not of the model's group: refused
        assert_eq!(via("other#1", "p/x"), None);
        assert_eq!(via("p/*#1", "other"), None);
        assert_eq!(via("nosuch", "p/x"), None);
    }

    #[test]
    fn groups_that_cannot_be_are_refused_with_the_reason() {
        let rows = [
            (
                format!(
                    r#"{{"model_list": [{}, {}]}}"#,
                    entry("*", "*", ""),
                    entry("*", "openai/*", "")
                ),
                "cannot share its model_name",
            ),
            (
                format!(
                    r#"{{"model_list": [{}, {}]}}"#,
                    r#"{"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "k"}, "model_info": {"id": "same"}}"#,
                    r#"{"model_name": "b", "litellm_params": {"model": "openai/b", "api_key": "k"}, "model_info": {"id": "same"}}"#
                ),
                "model_info.id `same` is also model_list[0]'s",
            ),
            (
                format!(r#"{{"model_list": [{}]}}"#, entry("m", "openai/a", r#", "weight": -1"#)),
                "must be a positive number",
            ),
        ];
        for (json, fragment) in rows {
            match compile_test(&json) {
                Err(e) => assert!(e.problem.contains(fragment), "{json}: {e}"),
                Ok(_) => panic!("{json} compiled"),
            }
        }
    }

    /// A model list for the fallback rows: an exact name `m`, a group `g`
    /// (ids `g-east`, `g-west`), a pattern `azure/*` (id `az`), a
    /// passthrough `*`, an alias `alias` of `g`.
    fn fallback_config(fallbacks: &str) -> String {
        let with_id = |name: &str, target: &str, id: &str| {
            format!(
                r#"{{"model_name": {name:?}, "litellm_params": {{"model": {target:?}, "api_key": "k"}}, "model_info": {{"id": {id:?}}}}}"#
            )
        };
        format!(
            r#"{{"model_list": [{}, {}, {}, {}, {}], "router_settings": {{"fallbacks": {fallbacks}, "model_group_alias": {{"alias": "g"}}}}}}"#,
            entry("m", "openai/m", ""),
            with_id("g", "groq/g1", "g-east"),
            with_id("g", "groq/g2", "g-west"),
            with_id("azure/*", "openai/az-*", "az"),
            entry("*", "*", ""),
        )
    }

    #[test]
    fn fallbacks_reach_ids_names_and_patterns_or_are_left_out_with_the_reason() {
        // (fallbacks, m's group: (id, priority, the model the member sends),
        // the warning for what is left out)
        type Row<'a> = (&'a str, &'a [(&'a str, u32, &'a str)], Option<&'a str>);
        let rows: &[Row] = &[
            // LiteLLM's "fallback to a specific model id"
            (r#"[{"m": ["g-west"]}]"#, &[("m#1", 0, "m"), ("g-west", 1, "g2")], None),
            // a name, an alias, a model only a pattern serves
            (
                r#"[{"m": ["alias", "azure/gpt-4o"]}]"#,
                &[("m#1", 0, "m"), ("g-east", 1, "g1"), ("g-west", 1, "g2"), ("az", 2, "az-gpt-4o")],
                None,
            ),
            // a deployment already in the group is not added again
            (
                r#"[{"m": ["g-east", "g"]}]"#,
                &[("m#1", 0, "m"), ("g-east", 1, "g1"), ("g-west", 2, "g2")],
                None,
            ),
            (
                r#"[{"m": ["g", "g-west"]}]"#,
                &[("m#1", 0, "m"), ("g-east", 1, "g1"), ("g-west", 1, "g2")],
                Some("router_settings.fallbacks[0].m: fallback `g-west` adds no deployment the group does not have already; left out"),
            ),
            (
                r#"[{"m": ["m", "g-east"]}]"#,
                &[("m#1", 0, "m"), ("g-east", 1, "g1")],
                Some("router_settings.fallbacks[0].m: fallback `m` is the group itself; left out"),
            ),
            (
                r#"[{"m": ["az"]}]"#,
                &[],
                Some("router_settings.fallbacks[0].m: fallback `az` is the model_info.id of pattern `azure/*`, which needs a model to fill its `*`: name a model it serves; left out"),
            ),
            (
                r#"[{"m": ["anthropic/claude"]}]"#,
                &[],
                Some("router_settings.fallbacks[0].m: fallback `anthropic/claude` is served by `*` (`model: \"*\"`), which has no address of its own for Envoy to fail over to; left out"),
            ),
            (
                r#"[{"nope": ["m"]}]"#,
                &[],
                Some("router_settings.fallbacks[0].nope: `nope` is no model_name with an address of its own (a `model: \"*\"` entry has none): its fallbacks are not acted on"),
            ),
            (
                r#"[{"*": ["m"]}]"#,
                &[],
                Some("router_settings.fallbacks[0].*: `*` is no model_name with an address of its own (a `model: \"*\"` entry has none): its fallbacks are not acted on"),
            ),
        ];
        for (fallbacks, members, warning) in rows {
            let config = compile_test(&fallback_config(fallbacks)).unwrap_or_else(|e| panic!("{fallbacks}: {e}"));
            let router = &config.router;
            let group = router.groups().iter().find(|g| g.model_name == "m");
            let got: Vec<(String, u32, String)> = group
                .map(|g| g.members.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let id = router.deployments()[m.deployment].id.clone();
                    let sent = router.route_via(&id, "m").map(|r| r.upstream_model.into_owned());
                    (id, m.priority, sent.unwrap_or_default())
                })
                .collect();
            let want: Vec<(String, u32, String)> = members
                .iter()
                .map(|(id, p, model)| (id.to_string(), *p, model.to_string()))
                .collect();
            assert_eq!(got, want, "{fallbacks}");
            let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
            let want: Vec<String> = warning.iter().map(|w| w.to_string()).collect();
            assert_eq!(warnings, want, "{fallbacks}");
        }
    }

    #[test]
    fn a_fallback_that_reaches_a_skipped_entry_is_left_out() {
        // `azure/claude-x` matches the skipped `azure/claude-*` before the
        // served `azure/*`, as a request for it would.
        let json = format!(
            r#"{{"model_list": [{}, {}, {}], "router_settings": {{"fallbacks": [{{"m": ["azure/claude-x", "azure/gpt-4o"]}}]}}}}"#,
            entry("m", "openai/m", ""),
            entry("azure/*", "openai/az-*", ""),
            r#"{"model_name": "azure/claude-*", "litellm_params": {"model": "bedrock/claude-*"}}"#,
        );
        let config = compile_test(&json).expect("compiles");
        let group = config
            .router
            .groups()
            .iter()
            .find(|g| g.model_name == "m")
            .expect("a group");
        let members: Vec<&str> = group
            .members
            .iter()
            .map(|m| config.router.deployments()[m.deployment].id.as_str())
            .collect();
        assert_eq!(members, ["m#1", "azure/*#1"]);
        let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
        assert!(
            warnings.contains(&"router_settings.fallbacks[0].m: fallback `azure/claude-x` is not served (see its entry's warning); left out".to_owned()),
            "{warnings:?}"
        );
    }

    #[test]
    fn models_reply_lists_names_as_written() {
        let config = compile_test(SEED).expect("seed compiles");
        let models: serde_json::Value = serde_json::from_slice(&config.models_reply).expect("json");
        assert_eq!(models["object"], "list");
        assert_listed(
            &config,
            &[
                ("anthropic/*", "anthropic"),
                ("groq/*", "groq"),
                ("fo::*:static::*", "openai"),
            ],
        );
    }

    /// A configuration with LiteLLM's `*` features: a passthrough catch-all,
    /// provider patterns, an exact name, aliases.
    const LITELLM_FEATURES: &str = r#"{"model_list": [
      {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o-2024-08-06", "api_key": "k"}},
      {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_key": "k"}},
      {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "k"}},
      {"model_name": "fast-*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
      {"model_name": "*", "litellm_params": {"model": "*"}}],
     "router_settings": {"model_group_alias": {
        "gpt-4": "gpt-4o",
        "claude": {"model": "anthropic/claude-3-5-sonnet-20241022", "hidden": true},
        "gpt-4o-mini": "fast-mini"}}}"#;

    #[test]
    fn litellm_router_semantics() {
        // (request model, route, cluster, upstream model); None: 404
        let rows: RouteRows = &[
            ("gpt-4o", Some(("gpt-4o", "openai", "gpt-4o-2024-08-06"))),
            // aliases first, even over an exact name
            ("gpt-4", Some(("gpt-4o", "openai", "gpt-4o-2024-08-06"))),
            ("gpt-4o-mini", Some(("fast-*", "groq", "mini"))),
            (
                "claude",
                Some(("anthropic/*", "anthropic", "claude-3-5-sonnet-20241022")),
            ),
            // the model as is: `*` matches any bare name before inference
            ("o1-mini", Some(("*", "openai", "o1-mini"))),
            (
                "claude-3-5-haiku-latest",
                Some(("*", "anthropic", "claude-3-5-haiku-latest")),
            ),
            ("mistral-large-latest", Some(("*", "mistral", "mistral-large-latest"))),
            // `*` forwards a provider prefix to that provider
            ("groq/llama-3.1-8b-instant", Some(("*", "groq", "llama-3.1-8b-instant"))),
            ("xai/grok-2", Some(("*", "xai", "grok-2"))),
            ("openai/gpt-4.1", Some(("openai/*", "openai", "gpt-4.1"))),
        ];
        assert_routes(LITELLM_FEATURES, rows);
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        for model in ["llama3", "meta-llama/Llama-3-8b", "azure/x"] {
            assert_eq!(
                config.router.route(model).err(),
                Some(super::NoRoute::NoProvider),
                "{model}"
            );
        }
    }

    #[test]
    fn bare_names_take_the_provider_of_their_family() {
        let json = format!(
            r#"{{"model_list": [{}, {}], "providers": {{"groq": {{"model_families": ["llama-*"]}}, "openai": {{"model_families": []}}}}}}"#,
            deployment("anthropic/*", "anthropic/*"),
            deployment("groq/*", "groq/*"),
        );
        let rows: RouteRows = &[
            (
                "claude-3-7-sonnet-latest",
                Some(("anthropic/*", "anthropic", "claude-3-7-sonnet-latest")),
            ),
            ("llama-3.3-70b", Some(("groq/*", "groq", "llama-3.3-70b"))),
            // openai's families were replaced by none
            ("gpt-4o", None),
            // a known provider prefix is never prefixed again
            ("openai/claude-x", None),
            ("mistral-small", None),
        ];
        assert_routes(&json, rows);
    }

    #[test]
    fn each_provider_of_a_passthrough_route_has_its_own_metrics_slot() {
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        let router = &config.router;
        let slot = |model: &str| router.route(model).ok().map(|r| r.slot);
        let label = |model: &str| slot(model).and_then(|s| router.slots().get(s)).cloned();
        assert_eq!(label("gpt-4"), Some(("gpt-4o".to_owned(), "openai".to_owned())));
        assert_eq!(label("o1"), Some(("*".to_owned(), "openai".to_owned())));
        assert_eq!(label("grok-3"), Some(("*".to_owned(), "xai".to_owned())));
        assert_ne!(slot("o1"), slot("grok-3"));
        assert_ne!(slot("o1"), slot("openai/o1"));
    }

    #[test]
    fn aliases_are_listed_unless_hidden() {
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        assert_listed(
            &config,
            &[
                ("gpt-4o", "openai"),
                ("openai/*", "openai"),
                ("anthropic/*", "anthropic"),
                ("fast-*", "groq"),
                ("*", "llm-router"),
                ("gpt-4", "openai"),
                ("gpt-4o-mini", "groq"),
            ],
        );
        let object = config
            .router
            .model_object("claude")
            .expect("a hidden alias still routes");
        assert!(String::from_utf8_lossy(&object).contains(r#""owned_by":"anthropic""#));
    }
}
