//! Which transport a run uses: `--transport`, or the one that serves the URL's scheme and
//! carries the endpoint's wire format; a mismatch is an error listing what fits.

use aiperf_core::endpoint::{EndpointCategory, WireFormat};
use aiperf_core::registries::Registries;
use aiperf_core::registry::Category;
use aiperf_core::transport::{Transport, TransportCategory, TransportContext, TransportMetadata};
use anyhow::bail;

/// The transport for this run: `--transport`, else inferred from the URL's scheme (no URL: the
/// in-process simulated engine) among the transports that carry the endpoint's wire format,
/// preferring the one named like the scheme (`http://` keeps choosing `http` over `http2`).
/// A transport that cannot serve the URL, or cannot carry the endpoint's requests (chat over
/// grpc), is an error listing what fits.
pub(crate) fn choose_transport(
    registries: &Registries,
    requested: Option<&str>,
    ctx: &TransportContext,
    endpoint_type: &str,
    wire_format: WireFormat,
) -> anyhow::Result<(String, Box<dyn Transport>)> {
    let scheme = ctx
        .url
        .as_deref()
        .and_then(|url| url.split_once("://"))
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let known: Vec<&str> = registries.transport.names().collect();
    if let Some(requested) = requested {
        if !known.contains(&requested) {
            bail!(
                "unknown transport `{requested}`: known transports are {}",
                known.join(", ")
            );
        }
        let transport = registries.transport.create_instance(requested, ctx)?;
        let metadata = transport.metadata();
        // A network transport that accepted the URL when created serves it, even under a
        // scheme it is not chosen for by default (grpc takes http://HOST:PORT).
        let serves = match &scheme {
            Some(_) => !metadata.url_schemes.is_empty(),
            None => metadata.url_schemes.is_empty(),
        };
        if !serves {
            match &scheme {
                Some(scheme) => bail!(
                    "transport `{requested}` cannot serve {scheme}:// URLs: pick another --transport or --url"
                ),
                None => bail!("transport `{requested}` needs a --url"),
            }
        }
        if !metadata.wire_formats.contains(&wire_format) {
            return Err(wire_mismatch(
                registries,
                endpoint_type,
                wire_format,
                &[requested],
                ctx,
            ));
        }
        return Ok((requested.to_owned(), transport));
    }

    let serves_scheme = |metadata: &TransportMetadata| match &scheme {
        Some(scheme) => metadata.url_schemes.contains(&scheme.as_str()),
        None => metadata.url_schemes.is_empty(),
    };
    let validation = TransportCategory::validation_context();
    let mut serving = Vec::new();
    let mut candidates = Vec::new();
    // Transports that serve the URL's scheme but refused this run's settings (a header, the
    // timeout): their reason is the run's error when no transport takes the URL.
    let mut refused = Vec::new();
    for name in registries.transport.names() {
        let transport = match registries.transport.create_instance(name, ctx) {
            Ok(transport) => transport,
            Err(error) => {
                let would_serve = registries
                    .transport
                    .create_instance(name, &validation)
                    .is_ok_and(|transport| serves_scheme(&transport.metadata()));
                if would_serve {
                    refused.push((name, error));
                }
                continue;
            }
        };
        let metadata = transport.metadata();
        if serves_scheme(&metadata) {
            serving.push(name);
            if metadata.wire_formats.contains(&wire_format) {
                candidates.push((name, transport));
            }
        }
    }
    if serving.is_empty() {
        if !refused.is_empty() {
            let (_, error) = refused.swap_remove(named_like(&refused, scheme.as_deref()));
            return Err(error.into());
        }
        match scheme {
            Some(scheme) => {
                let mut served: Vec<String> = Vec::new();
                for (_, metadata) in transport_facts(registries, ctx) {
                    for served_scheme in metadata.url_schemes {
                        let url = format!("{served_scheme}://");
                        if !served.contains(&url) {
                            served.push(url);
                        }
                    }
                }
                bail!(
                    "no transport serves {scheme}:// URLs: use a --url starting with one of {} \
                     (or --transport with one of {})",
                    served.join(", "),
                    known.join(", ")
                )
            }
            None => bail!("no in-process transport is built in: give a --url"),
        }
    }
    if candidates.is_empty() {
        return Err(wire_mismatch(
            registries,
            endpoint_type,
            wire_format,
            &serving,
            ctx,
        ));
    }
    let (name, transport) = candidates.swap_remove(named_like(&candidates, scheme.as_deref()));
    Ok((name.to_owned(), transport))
}

/// The index, in `named` (pairs of a transport's name and something of it, never empty), of
/// the transport named like the URL's `scheme` (`http` for `http://`), else 0.
fn named_like<T>(named: &[(&str, T)], scheme: Option<&str>) -> usize {
    named
        .iter()
        .position(|(name, _)| Some(*name) == scheme)
        .unwrap_or(0)
}

/// What each transport carries and serves: built with this run's context, or else with the
/// validation context (a transport refuses URLs it does not serve).
fn transport_facts<'r>(
    registries: &'r Registries,
    ctx: &TransportContext,
) -> Vec<(&'r str, TransportMetadata)> {
    let validation = TransportCategory::validation_context();
    registries
        .transport
        .names()
        .filter_map(|name| {
            let transport = registries
                .transport
                .create_instance(name, ctx)
                .or_else(|_| registries.transport.create_instance(name, &validation))
                .ok()?;
            Some((name, transport.metadata()))
        })
        .collect()
}

/// The error for an endpoint whose requests none of `transports` (those serving the URL, or the
/// one asked for) can carry: the endpoint types that fit them, and the transports that fit the
/// endpoint, with the URLs that select each.
fn wire_mismatch(
    registries: &Registries,
    endpoint_type: &str,
    wire_format: WireFormat,
    transports: &[&str],
    ctx: &TransportContext,
) -> anyhow::Error {
    let facts = transport_facts(registries, ctx);
    let carried: Vec<WireFormat> = facts
        .iter()
        .filter(|(name, _)| transports.contains(name))
        .flat_map(|(_, metadata)| metadata.wire_formats.iter().copied())
        .collect();
    let endpoint_validation = EndpointCategory::validation_context();
    let fitting_endpoints: Vec<&str> = registries
        .endpoint
        .names()
        .filter(|name| {
            registries
                .endpoint
                .create_instance(name, &endpoint_validation)
                .is_ok_and(|endpoint| carried.contains(&endpoint.metadata().wire_format))
        })
        .collect();
    let fitting_transports: Vec<String> = facts
        .iter()
        .filter(|(_, metadata)| metadata.wire_formats.contains(&wire_format))
        .map(|(name, metadata)| match metadata.url_schemes {
            [] => format!("{name} (no --url)"),
            schemes => {
                let urls: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
                format!("{name} (--url {})", urls.join(" or "))
            }
        })
        .collect();
    let (which, fit) = match transports {
        [one] => (format!("transport `{one}`"), format!("`{one}`")),
        several => (
            format!("the transports serving this URL ({})", several.join(", ")),
            "them".to_owned(),
        ),
    };
    let endpoints = match fitting_endpoints.as_slice() {
        [] => "none".to_owned(),
        names => names.join(", "),
    };
    let transports = match fitting_transports.as_slice() {
        [] => "none in this build".to_owned(),
        names => names.join(", "),
    };
    anyhow::anyhow!(
        "endpoint `{endpoint_type}` sends {wire_format} requests, which {which} cannot carry: \
         endpoint types that fit {fit} are {endpoints}; transports that carry \
         `{endpoint_type}` are {transports}"
    )
}
