//! `GET /system/df` (`docker system df [-v]`): the engine's disk usage in Docker's shape —
//! images with their shared size and container count, containers with their writable
//! layer's size, volumes with their size and links, and the build step cache.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::errors::HttpError;
use crate::http::{self, Resp};
use crate::server::Shared;

/// `GET /system/df`.
pub async fn system_df(st: &Shared) -> Result<Resp, HttpError> {
    let body = st
        .engine(|e| {
            let u = e.disk_usage()?;
            // One entry per image (the engine lists one row per tag).
            let mut images: BTreeMap<String, (Vec<String>, &gcr_engine::usage::ImageUsage)> =
                BTreeMap::new();
            for i in &u.images {
                let entry = images.entry(i.row.id.clone()).or_insert((Vec::new(), i));
                if i.row.repository != "<none>" {
                    entry.0.push(format!("{}:{}", i.row.repository, i.row.tag));
                }
            }
            let images: Vec<Value> = images
                .into_iter()
                .map(|(id, (tags, i))| {
                    json!({
                        "Id": format!("sha256:{id}"),
                        "ParentId": "",
                        "RepoTags": tags,
                        "RepoDigests": [],
                        "Created": i.row.created.unwrap_or(0),
                        "Size": i.row.size,
                        "SharedSize": i.shared,
                        "VirtualSize": i.row.size,
                        "Labels": {},
                        "Containers": i.containers,
                    })
                })
                .collect();
            let nets = e.net_view();
            let containers: Vec<Value> = u
                .containers
                .iter()
                .map(|c| {
                    let mut item = crate::containers::ListItem::new(e, &nets, &c.record);
                    item.size_rw = Some(c.size_rw);
                    item.size_root_fs = Some(0);
                    serde_json::to_value(item).unwrap_or_default()
                })
                .collect();
            let volumes: Vec<Value> = u
                .volumes
                .iter()
                .map(|v| {
                    let mut j = crate::system::volume_json(&v.info);
                    j["UsageData"] = json!({
                        "Size": v.size,
                        "RefCount": v.info.containers.len(),
                    });
                    j
                })
                .collect();
            let cache: Vec<Value> = u
                .build_cache
                .iter()
                .map(|c| {
                    json!({
                        "ID": c.key.chars().take(25).collect::<String>(),
                        "Type": "regular",
                        "Description": format!("gcr build step, layer {}", c.digest),
                        "InUse": c.in_use,
                        "Shared": c.in_use,
                        "Size": c.size,
                        "CreatedAt": gcr_engine::logs::rfc3339_nanos(c.created_at * 1_000_000_000),
                    })
                })
                .collect();
            Ok(json!({
                "LayersSize": u.layers_size,
                "Images": images,
                "Containers": containers,
                "Volumes": volumes,
                "BuildCache": cache,
            }))
        })
        .await?;
    Ok(http::json(StatusCode::OK, &body))
}
