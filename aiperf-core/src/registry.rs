//! The hybrid registry: one [`Registry`] per category, holding every implementation registered
//! under each name, builtins (from linkme slices) and plugins (from the override table that
//! `aiperf-cli/build.rs` generates from Cargo metadata), with exactly one selected per name.
//!
//! Selection rules (DESIGN.md §3), applied by [`Registry::add_plugin`] and
//! [`Registry::use_implementation`]:
//! 1. a plugin beats a builtin of the same name;
//! 2. between plugins, the higher `priority` wins; two plugins with the same name and priority
//!    are a [`RegistryError::Conflict`] unless a pin chooses one;
//! 3. a pin (`[package.metadata.aiperf.select]`, see [`Pin`]) or a run-time
//!    [`Registry::use_implementation`] overrides both; every implementation stays reachable.
//!
//! ```
//! use aiperf_core::endpoint::EndpointCategory;
//! use aiperf_core::registry::Registry;
//!
//! // Builtins of this binary (none are linked into this doctest, so the registry is empty).
//! let registry = Registry::<EndpointCategory>::builtins();
//! assert!(registry.create_instance("no-such-endpoint", &Default::default()).is_err());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A kind of pluggable thing (endpoint, transport, ...), declared with [`crate::define_category!`].
pub trait Category: Sized + 'static {
    /// The trait object every implementation is created as, e.g. `dyn Endpoint`.
    type Instance: ?Sized;
    /// What a factory receives to build an instance.
    type Context;
    /// The category's name as users type it (`endpoint`).
    const NAME: &'static str;
    /// One sentence saying what implementations of this category do.
    const DESCRIPTION: &'static str;
    /// The builtins registered in this category's linkme slice.
    fn builtin_registrations() -> &'static [Registration<Self>];
    /// A context every implementation should accept, used by `aiperf plugins --validate`.
    fn validation_context() -> Self::Context;
}

/// Builds a boxed instance of a category's trait from the category's context.
pub type Factory<C> =
    fn(&<C as Category>::Context) -> Result<Box<<C as Category>::Instance>, CreateError>;

/// Implemented for every type that can be registered in category `C`: a blanket impl written by
/// [`crate::define_category!`] for every implementor of the category's trait.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be registered as an aiperf {C}: it does not implement the category's trait",
    note = "a plugin's [package.metadata.aiperf.plugins] entry must name a type implementing the category's trait (Endpoint for `endpoint`, Transport for `transport`)"
)]
pub trait Implementation<C: Category>: 'static {
    /// Creates the implementation from the category's context and boxes it.
    fn create_boxed(ctx: &C::Context) -> Result<Box<C::Instance>, CreateError>;
}

/// One implementation of a category under one name: what the linkme slices and the generated
/// plugin table hold.
pub struct Registration<C: Category> {
    /// The name it is registered under (`chat`).
    pub name: &'static str,
    /// The type's name without its path (`ChatEndpoint`).
    pub type_name: &'static str,
    /// The Cargo package that defines it (`aiperf-endpoints`).
    pub crate_name: &'static str,
    /// That package's version.
    pub version: &'static str,
    /// One line saying what it does.
    pub description: &'static str,
    /// Plugins only: higher wins between plugins of the same name. Builtins use 0.
    pub priority: i32,
    /// Builds an instance.
    pub factory: Factory<C>,
}

impl<C: Category> Registration<C> {
    /// Describes type `T` registered under `name`; used by the registration macros and by the
    /// generated plugin table.
    pub const fn of<T: Implementation<C>>(
        name: &'static str,
        type_name: &'static str,
        crate_name: &'static str,
        version: &'static str,
        description: &'static str,
        priority: i32,
    ) -> Self {
        Self {
            name,
            type_name,
            crate_name,
            version,
            description,
            priority,
            factory: T::create_boxed,
        }
    }
}

impl<C: Category> fmt::Debug for Registration<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("category", &C::NAME)
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("crate_name", &self.crate_name)
            .field("priority", &self.priority)
            .finish()
    }
}

/// An implementation failed to build from the context it was given.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// What was wrong and what to do, e.g. "the embeddings endpoint does not stream: drop --streaming".
    pub message: String,
}

impl CreateError {
    /// A creation error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Errors of the registry's operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No implementation is registered under this name.
    #[error("unknown {category} `{name}`: known {category}s are {}", known.join(", "))]
    UnknownName {
        /// The category searched.
        category: &'static str,
        /// The name asked for.
        name: String,
        /// Every registered name, sorted.
        known: Vec<String>,
    },
    /// `use_implementation` or a pin named something that is not registered under this name.
    #[error(
        "{category} `{name}` has no implementation `{which}`: choose a type or crate among {}",
        candidates.join(", ")
    )]
    UnknownImplementation {
        /// The category.
        category: &'static str,
        /// The registered name.
        name: String,
        /// The type or crate asked for.
        which: String,
        /// `Type (crate)` for every implementation of that name.
        candidates: Vec<String>,
    },
    /// Two plugins claim the same name with the same priority and nothing pins one.
    #[error(
        "plugins `{first}` and `{second}` both provide {category} `{name}` with priority {priority}: \
         give one a higher `priority` in its [package.metadata.aiperf.plugins] entry, or pin one in \
         aiperf-cli's Cargo.toml with [package.metadata.aiperf.select] {category}.{name} = \"{first}\""
    )]
    Conflict {
        /// The category.
        category: &'static str,
        /// The contested name.
        name: String,
        /// The two plugin crates.
        first: String,
        /// The other crate.
        second: String,
        /// Their common priority.
        priority: i32,
    },
    /// A `category.name=which` argument did not have that shape.
    #[error(
        "`{0}` is not of the form CATEGORY.NAME=TYPE_OR_CRATE (e.g. endpoint.chat=ChatEndpoint)"
    )]
    MalformedChoice(String),
    /// A category name that does not exist.
    #[error("unknown category `{name}`: known categories are {}", known.join(", "))]
    UnknownCategory {
        /// The name asked for.
        name: String,
        /// Every category.
        known: Vec<String>,
    },
    /// The selected implementation failed to build. Its reason is part of this error's
    /// message, not a separate cause, so that printing the error with its causes says it once.
    #[error("cannot create {category} `{name}` ({type_name} from {crate_name}): {reason}")]
    Create {
        /// The category.
        category: &'static str,
        /// The registered name.
        name: String,
        /// The implementation's type.
        type_name: &'static str,
        /// Its crate.
        crate_name: &'static str,
        /// Why it failed.
        reason: CreateError,
    },
}

/// A build-time choice from `[package.metadata.aiperf.select]` in the binary's Cargo.toml:
/// `endpoint.chat = "some-crate"` selects that crate's (or type's) implementation of `chat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The category (`endpoint`).
    pub category: &'static str,
    /// The registered name (`chat`).
    pub name: &'static str,
    /// A crate name or a type name.
    pub which: &'static str,
}

/// What `list_implementations` reports for one implementation (the seed's dictionaries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImplementationInfo {
    /// The name it is registered under.
    pub name: String,
    /// Its type name.
    pub type_name: String,
    /// The crate defining it.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// That crate's version.
    pub version: String,
    /// One line saying what it does.
    pub description: String,
    /// Whether it came from a plugin crate's metadata rather than a builtin linkme slice.
    pub is_plugin: bool,
    /// Whether `create_instance` uses it.
    pub is_selected: bool,
    /// Its priority among plugins (0 for builtins).
    pub priority: i32,
}

/// Why the selected implementation of a name is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelectedBy {
    /// The default rules (plugin over builtin, then priority).
    Rules,
    /// A build-time pin or a run-time `use_implementation`.
    Choice,
}

struct Entry<C: Category> {
    registration: &'static Registration<C>,
    is_plugin: bool,
}

struct Slot<C: Category> {
    entries: Vec<Entry<C>>,
    selected: usize,
    selected_by: SelectedBy,
}

/// Every implementation of one category, by name, with one selected per name.
pub struct Registry<C: Category> {
    slots: BTreeMap<&'static str, Slot<C>>,
}

impl<C: Category> Default for Registry<C> {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
        }
    }
}

impl<C: Category> fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("category", &C::NAME)
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl<C: Category> Registry<C> {
    /// A registry holding the builtins linked into this binary (the category's linkme slice).
    pub fn builtins() -> Self {
        let mut registry = Self::default();
        for registration in C::builtin_registrations() {
            registry.add_builtin(registration);
        }
        registry
    }

    /// Adds a builtin. A builtin never displaces a plugin or an earlier builtin of the same name
    /// (two builtins of one name are listed in type-name order, the first selected).
    pub fn add_builtin(&mut self, registration: &'static Registration<C>) {
        self.insert(registration, false);
    }

    /// Adds a plugin implementation, applying the selection rules.
    ///
    /// Fails with [`RegistryError::Conflict`] when another plugin already holds the name with the
    /// same priority and no choice was made; the plugin stays listed, the selection unchanged.
    pub fn add_plugin(
        &mut self,
        registration: &'static Registration<C>,
    ) -> Result<(), RegistryError> {
        self.discover_plugins(std::slice::from_ref(registration), &[])
    }

    /// Adds every plugin of a generated override table, then applies the pins of this category
    /// (build-time choices from `[package.metadata.aiperf.select]`), then the selection rules
    /// for every name a plugin touched. A conflict that a pin settles is no conflict.
    pub fn discover_plugins(
        &mut self,
        table: &'static [Registration<C>],
        pins: &[Pin],
    ) -> Result<(), RegistryError> {
        for registration in table {
            self.insert(registration, true);
        }
        for pin in pins.iter().filter(|p| p.category == C::NAME) {
            self.use_implementation(pin.name, pin.which)?;
        }
        for registration in table {
            self.reselect(registration.name)?;
        }
        Ok(())
    }

    /// Selects, for `name`, the implementation whose type name or crate name is `which`.
    pub fn use_implementation(&mut self, name: &str, which: &str) -> Result<(), RegistryError> {
        let slot = self.slot(name)?;
        let found = slot
            .entries
            .iter()
            .position(|e| e.registration.type_name == which || e.registration.crate_name == which);
        let Some(index) = found else {
            return Err(RegistryError::UnknownImplementation {
                category: C::NAME,
                name: name.to_owned(),
                which: which.to_owned(),
                candidates: slot
                    .entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} ({})",
                            e.registration.type_name, e.registration.crate_name
                        )
                    })
                    .collect(),
            });
        };
        let slot = self.slots.get_mut(name).expect("slot exists: found above");
        slot.selected = index;
        slot.selected_by = SelectedBy::Choice;
        Ok(())
    }

    /// Creates an instance of the implementation selected for `name`.
    pub fn create_instance(
        &self,
        name: &str,
        ctx: &C::Context,
    ) -> Result<Box<C::Instance>, RegistryError> {
        let registration = self.selected(name)?;
        (registration.factory)(ctx).map_err(|reason| RegistryError::Create {
            category: C::NAME,
            name: name.to_owned(),
            type_name: registration.type_name,
            crate_name: registration.crate_name,
            reason,
        })
    }

    /// The registration selected for `name`.
    pub fn selected(&self, name: &str) -> Result<&'static Registration<C>, RegistryError> {
        let slot = self.slot(name)?;
        Ok(slot.entries[slot.selected].registration)
    }

    /// Every implementation registered under `name`, the selected one first, then plugins by
    /// descending priority, then builtins, ties by type name.
    pub fn list_implementations(
        &self,
        name: &str,
    ) -> Result<Vec<ImplementationInfo>, RegistryError> {
        let slot = self.slot(name)?;
        let mut infos: Vec<ImplementationInfo> = slot
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| ImplementationInfo {
                name: e.registration.name.to_owned(),
                type_name: e.registration.type_name.to_owned(),
                crate_name: e.registration.crate_name.to_owned(),
                version: e.registration.version.to_owned(),
                description: e.registration.description.to_owned(),
                is_plugin: e.is_plugin,
                is_selected: i == slot.selected,
                priority: e.registration.priority,
            })
            .collect();
        infos.sort_by(|a, b| {
            (b.is_selected, b.is_plugin, b.priority, &a.type_name).cmp(&(
                a.is_selected,
                a.is_plugin,
                a.priority,
                &b.type_name,
            ))
        });
        Ok(infos)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.slots.keys().copied()
    }

    /// Every registration of every name (for validation), in name order.
    pub fn all_registrations(&self) -> impl Iterator<Item = &'static Registration<C>> + '_ {
        self.slots
            .values()
            .flat_map(|slot| slot.entries.iter().map(|e| e.registration))
    }

    fn slot(&self, name: &str) -> Result<&Slot<C>, RegistryError> {
        self.slots
            .get(name)
            .ok_or_else(|| RegistryError::UnknownName {
                category: C::NAME,
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
            })
    }

    fn insert(&mut self, registration: &'static Registration<C>, is_plugin: bool) {
        let slot = self.slots.entry(registration.name).or_insert_with(|| Slot {
            entries: Vec::new(),
            selected: 0,
            selected_by: SelectedBy::Rules,
        });
        let selected_type = slot
            .entries
            .get(slot.selected)
            .map(|e| e.registration.type_name);
        slot.entries.push(Entry {
            registration,
            is_plugin,
        });
        slot.entries
            .sort_by_key(|e| (e.registration.type_name, e.registration.crate_name));
        if let Some(selected_type) = selected_type {
            slot.selected = slot
                .entries
                .iter()
                .position(|e| e.registration.type_name == selected_type)
                .expect("the selected entry is still in the slot");
        }
    }

    /// Applies rules 1 and 2 to `name`, unless a choice was made.
    fn reselect(&mut self, name: &str) -> Result<(), RegistryError> {
        let slot = self
            .slots
            .get_mut(name)
            .expect("reselect is called after insert");
        if slot.selected_by == SelectedBy::Choice {
            return Ok(());
        }
        let rank = |e: &Entry<C>| {
            (
                e.is_plugin,
                if e.is_plugin {
                    e.registration.priority
                } else {
                    i32::MIN
                },
            )
        };
        let best = slot
            .entries
            .iter()
            .map(rank)
            .max()
            .expect("a slot has at least one entry");
        let winners: Vec<usize> = (0..slot.entries.len())
            .filter(|&i| rank(&slot.entries[i]) == best)
            .collect();
        if best.0 && winners.len() > 1 {
            let first = slot.entries[winners[0]].registration;
            let second = slot.entries[winners[1]].registration;
            return Err(RegistryError::Conflict {
                category: C::NAME,
                name: name.to_owned(),
                first: first.crate_name.to_owned(),
                second: second.crate_name.to_owned(),
                priority: first.priority,
            });
        }
        slot.selected = winners[0];
        Ok(())
    }
}
