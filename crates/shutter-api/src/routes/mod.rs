//! Routes, one module per resource. Each handler is documented for OpenAPI where it is
//! defined, so the document cannot drift from the code.

pub mod accounts;
pub mod events;
pub mod files;
pub mod ops;
pub mod posts;
pub mod social;
pub mod tus;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Problem;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shutter",
        description = "A self-hostable backend for a photo-sharing social app: accounts, posts, comments, files.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration and sessions"),
        (name = "users", description = "Profiles, tiers and limits"),
        (name = "posts", description = "Posts and comments"),
        (name = "files", description = "Files, presigned uploads and downloads"),
        (name = "uploads", description = "Resumable uploads (tus 1.0.0)"),
        (name = "events", description = "Live events (SSE and WebSocket)"),
        (name = "social", description = "Follows, likes, home feed and explore"),
        (name = "admin", description = "Administration")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every `/v1` route with its OpenAPI description.
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::refresh))
        .routes(routes!(accounts::logout))
        .routes(routes!(
            accounts::me,
            accounts::update_me,
            accounts::delete_me
        ))
        .routes(routes!(accounts::limits))
        .routes(routes!(accounts::user_by_id))
        .routes(routes!(accounts::user_by_username))
        .routes(routes!(accounts::admin_update_user))
        .routes(routes!(posts::create_post))
        .routes(routes!(
            posts::get_post,
            posts::update_post,
            posts::delete_post
        ))
        .routes(routes!(posts::posts_of_user))
        .routes(routes!(posts::create_comment, posts::comments))
        .routes(routes!(posts::delete_comment))
        .routes(routes!(files::create_file, files::list_files))
        .routes(routes!(
            files::get_file,
            files::update_file,
            files::delete_file
        ))
        .routes(routes!(files::complete_upload))
        .routes(routes!(files::get_content, files::put_content))
        .routes(routes!(tus::create, tus::options))
        .routes(routes!(
            tus::head,
            tus::patch,
            tus::terminate,
            tus::options_upload
        ))
        .routes(routes!(events::sse))
        .routes(routes!(events::ws))
        .routes(routes!(social::follow, social::unfollow))
        .routes(routes!(social::followers))
        .routes(routes!(social::following))
        .routes(routes!(social::like, social::unlike))
        .routes(routes!(social::likes))
        .routes(routes!(social::feed))
        .routes(routes!(social::explore))
}
