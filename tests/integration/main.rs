//! Integration tests: the real `.wasm` in the real `banatie-host`, against a
//! real Garage S3 server and a Gemini double, all on 127.0.0.1.
//!
//! One binary (one Garage for the run, one compiled host); each test starts
//! its own host process and provider double. Needs the component built first:
//! `cargo build --target wasm32-wasip2 --release -p banatie-live`, and the
//! operators' CLI for `cli::` (`cargo build -p banatie-cli`)
//! (`scripts/test.sh` does everything).

mod admin;
mod browser;
mod cli;
mod conformance;
mod deploy;
mod errors;
mod fairness;
mod hardening;
mod hits;
mod host_cli;
mod limits;
mod live;
mod models;
mod openapi;
mod operations;
mod progressive;
mod public;
mod resilience;
mod safety;
mod scale;
mod scopes;
mod support;
mod telemetry;
mod variants;
mod warm;

use libtest_mimic::{Arguments, Trial};
use support::runtime::{self, Runtime, WashStore};

macro_rules! trials {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$(Trial::test(concat!(stringify!($module), "::", stringify!($name)), || {
            support::alone_or_together(concat!(stringify!($module), "::", stringify!($name)), $module::$name);
            Ok(())
        })),*]
    };
}

/// The scenarios that run again under every other runtime, with every host
/// they start being that runtime (trials named `RUNTIME::module::name`,
/// `support::runtime`). `if` names the runtimes a scenario can hold on.
struct Scenario {
    name: &'static str,
    test: fn(),
    runs_on: fn(Runtime) -> bool,
}

macro_rules! scenarios {
    ($($module:ident :: $name:ident $(if $cond:expr)?),* $(,)?) => {
        vec![$(Scenario {
            name: concat!(stringify!($module), "::", stringify!($name)),
            test: $module::$name,
            runs_on: { let _f: fn(Runtime) -> bool = |_| true; $(let _f: fn(Runtime) -> bool = $cond;)? _f },
        }),*]
    };
}

/// Whether `runtime` can run here; loud when it cannot (a failure when
/// `BANATIE_REQUIRE_RUNTIMES=1`, as in CI).
fn available(runtime: Runtime) -> bool {
    let found = match runtime {
        Runtime::BanatieHost => Some("banatie-host".to_string()),
        Runtime::Spin(v) => testkit::spin::version(v)
            .map(|version| format!("{version} ({})", testkit::spin::binary(v).unwrap().display())),
        Runtime::Wash(store) => {
            let backend = match store {
                WashStore::Nats => testkit::nats::binary().map(|b| b.display().to_string()),
                WashStore::Redis => Some("redis-server".into()),
                WashStore::Dir => Some("a directory".into()),
            };
            testkit::wash::version().zip(backend).map(|(v, b)| format!("{v} on {b}"))
        }
    };
    match found {
        Some(what) => {
            eprintln!("runtime {}: {what}", runtime.name());
            true
        }
        None if runtime::required() => {
            panic!(
                "BANATIE_REQUIRE_RUNTIMES=1 but {} cannot run here (no CLI on PATH, none in ../shared)",
                runtime.name()
            )
        }
        None => {
            eprintln!(
                "\n*** {} suite SKIPPED: its CLI is neither on PATH nor in ../shared (see README, Run the tests). ***\n",
                runtime.name()
            );
            false
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let wasm = support::host::repo_root().join("target/wasm32-wasip2/release/banatie_live.wasm");
    if !args.list {
        assert!(
            wasm.exists(),
            "{} is missing: build the component first (cargo build --target wasm32-wasip2 --release -p banatie-live)",
            wasm.display()
        );
    }
    let trials = trials![
        live::miss_then_hit_serves_identical_bytes_and_headers,
        hits::two_hosts_sharing_a_store_never_serve_a_purged_or_replaced_image_from_their_copies,
        hits::copies_survive_a_restart_and_a_damaged_one_is_fetched_again,
        hits::a_component_without_the_credentials_reads_nothing_through_the_cache,
        hits::the_cache_keeps_to_its_size,
        hits::a_second_host_on_one_cache_directory_is_refused,
        hits::a_hot_keyed_hit_makes_two_kv_operations,
        hits::a_hundred_concurrent_hits_count_exactly,
        live::another_aspect_ratio_is_another_entry,
        live::projects_never_see_each_others_entries,
        live::a_restarted_host_keeps_the_cache,
        live::head_reports_without_generating,
        live::a_vanished_object_is_regenerated,
        errors::bad_input_is_400_and_writes_nothing,
        errors::missing_or_unknown_key_is_401,
        errors::unknown_route_is_404_and_wrong_method_is_405,
        errors::provider_failure_is_502_and_writes_nothing,
        errors::refused_prompt_is_422_and_writes_nothing,
        errors::unreachable_s3_is_502_and_writes_nothing,
        admin::projects_are_created_by_the_admin_only,
        admin::api_keys_are_stored_only_as_hashes,
        admin::admin_api_is_disabled_without_a_token,
        host_cli::outbound_hosts_outside_the_manifest_are_refused,
        host_cli::missing_required_variable_stops_the_host_before_serving,
        host_cli::dev_mode_serves_miss_then_hit_with_no_setup,
        host_cli::a_state_dir_written_by_an_earlier_main_keeps_serving_its_images,
        host_cli::readmes_first_command_serves_miss_then_hit,
        host_cli::readmes_json_answers_have_the_real_answers_fields,
        cli::warm_makes_each_image_once_and_every_url_is_a_hit_after,
        operations::the_operator_listener_counts_what_stats_count_and_answers_health,
        operations::the_health_route_follows_the_bucket,
        host_cli::a_state_dir_with_variants_scopes_and_entries_from_153cf55_keeps_serving,
        host_cli::an_invalid_component_configuration_stops_the_host_before_serving,
        public::a_signed_url_needs_no_key_and_is_cached_like_any_other,
        limits::a_client_gets_exactly_its_misses_and_another_client_is_unaffected,
        scopes::public_scope_urls_work_by_hand_and_scope_limits_stop_only_misses,
        safety::a_public_scopes_policy_refuses_prompts_with_422_and_makes_nothing,
        safety::moderation_refuses_a_flagged_prompt_once_asked_and_an_outage_follows_moderation_fail,
        safety::a_takedown_answers_451_on_every_url_of_the_image_and_leaves_nothing_in_s3,
        scopes::the_entries_list_matches_the_hit_counts_clients_saw,
        scopes::enhance_makes_one_text_call_and_one_image_call_for_ten_identical_requests,
        variants::twenty_concurrent_requests_for_ten_variants_make_one_generation_and_eleven_objects,
        variants::a_client_derives_at_most_its_allowance_of_variants_and_cached_ones_stay_served,
        public::changing_any_character_of_a_signed_query_is_403,
        public::the_signature_tamper_matrix_is_403,
        public::the_budget_refuses_misses_with_429_but_serves_hits,
        public::stats_are_exact_after_concurrent_hits,
        public::purge_removes_the_entry_and_the_object,
        public::rotation_invalidates_the_old_key_and_old_signatures,
        resilience::fifty_concurrent_identical_misses_make_one_provider_call,
        resilience::rounds_of_concurrent_identical_misses_never_generate_twice,
        resilience::two_hosts_sharing_one_kv_make_one_provider_call,
        resilience::a_lease_left_by_a_killed_host_is_taken_over,
        resilience::conditional_and_head_requests_skip_the_object,
        resilience::provider_timeouts_and_rate_limits_are_503_with_retry_after,
        resilience::malformed_provider_answers_and_s3_put_failures_are_502,
        resilience::thirty_malformed_requests_get_clean_4xx_and_write_nothing,
        scale::two_hosts_on_one_store_share_cache_counts_and_single_flight,
        hardening::more_concurrent_requests_than_the_old_pool_are_all_served,
        hardening::beyond_capacity_requests_queue_then_get_503_json_with_retry_after,
        hardening::slow_headers_and_idle_keep_alive_connections_are_closed,
        hardening::a_request_past_the_request_timeout_is_cut_off_with_503_json,
        hardening::a_request_without_host_is_400_json,
        hardening::a_flood_of_parameter_names_is_a_400_before_anything_else,
        hardening::a_corrupt_entry_is_regenerated_and_delete_always_removes_it,
        hardening::small_things_a_client_would_trip_over,
        hardening::a_stuck_kv_store_does_not_stall_unrelated_requests,
        hardening::a_looping_guest_is_cut_off_at_the_deadline_and_the_host_keeps_serving,
        hardening::an_oversized_provider_image_is_502_counted_and_releases_the_waiters,
        hardening::a_request_reads_its_configuration_in_one_host_call,
        hardening::refused_misses_leave_no_rows_behind,
        hardening::a_corrupt_project_record_is_a_clear_error_and_rotation_repairs_it,
        fairness::a_hit_stays_fast_while_two_maximal_derivations_run,
        fairness::waiters_and_non_readers_of_one_address_never_fail_another_clients_hits,
        fairness::a_client_that_stops_reading_is_dropped_after_the_send_timeout_and_frees_its_instance,
        fairness::refused_prompts_make_at_most_the_clients_allowance_of_provider_calls,
        fairness::hostile_provider_bytes_are_502_and_store_nothing,
        fairness::purges_and_regenerates_racing_with_making_leave_rows_objects_and_stats_equal,
        fairness::if_none_match_spans_fields_and_an_oversized_field_is_431,
        scale::the_openai_provider_generates_refuses_and_fails_like_gemini,
        models::each_model_calls_its_provider_and_seed_and_template_reach_it,
        models::a_failing_model_falls_back_once_within_one_budget_unit,
        models::references_reach_the_provider_and_aliases_key_them,
        scale::switching_provider_never_serves_the_other_providers_image,
        conformance::the_component_targets_spins_http_trigger_world,
        conformance::the_wasmcloud_build_targets_a_wasmcloud_host,
        conformance::the_wasmcloud2_build_targets_wash_runtime,
        conformance::the_host_validates_spin_toml,
        conformance::every_crate_in_the_component_has_an_apache_compatible_licence,
        conformance::the_component_stays_under_3_4_mb,
        browser::the_demo_page_renders_live_images_and_reloads_from_the_browser_cache,
        browser::there_is_no_demo_page_unless_asked_for,
        browser::an_img_whose_url_answers_429_renders_the_error_picture,
        browser::a_progressive_img_paints_the_waiting_frame_then_the_image_a_hit_serves,
        browser::a_progressive_img_shows_the_providers_previews_as_they_stream,
        variants::every_variant_is_marked_as_ai_generated_for_exiftool,
        operations::prometheus_reads_what_stats_count,
        operations::the_documented_alert_rules_pass_promtool,
        telemetry::every_request_is_one_json_line_with_its_id_and_never_its_query,
        telemetry::text_logs_are_one_line_per_request,
        telemetry::a_miss_is_one_trace_with_its_outbound_calls,
        progressive::ten_concurrent_progressive_misses_make_one_generation_and_each_client_paints_before_it,
        progressive::a_refused_progressive_miss_ends_with_the_error_frame_and_stores_nothing,
        progressive::a_client_that_hangs_up_after_the_first_part_does_not_stop_the_image,
        progressive::openais_previews_reach_the_client_as_they_stream,
        warm::thirty_prompts_ten_cached_make_twenty_generations_two_at_a_time_each_line_as_it_completes,
        warm::a_budget_that_runs_out_halfway_refuses_the_rest_and_spends_nothing_more,
        warm::bad_warm_input_is_a_clear_4xx_and_makes_nothing,
        warm::a_client_that_hangs_up_after_five_lines_leaves_no_lease,
        openapi::every_described_operation_is_served,
        openapi::schemathesis_finds_no_server_error_or_undocumented_status,
        openapi::schemathesis_fails_on_an_undocumented_status,
    ];
    let matrix = scenarios![
        live::miss_then_hit_serves_identical_bytes_and_headers,
        live::a_restarted_host_keeps_the_cache,
        live::a_vanished_object_is_regenerated,
        errors::provider_failure_is_502_and_writes_nothing,
        operations::the_health_route_follows_the_bucket,
        public::a_signed_url_needs_no_key_and_is_cached_like_any_other,
        // Each runtime hands the component the raw query its own way.
        public::changing_any_character_of_a_signed_query_is_403,
        public::the_signature_tamper_matrix_is_403,
        public::rotation_invalidates_the_old_key_and_old_signatures,
        // wasmCloud tells the component nothing about the client.
        limits::a_client_gets_exactly_its_misses_and_another_client_is_unaffected if Runtime::knows_the_client,
        scopes::public_scope_urls_work_by_hand_and_scope_limits_stop_only_misses,
        safety::a_public_scopes_policy_refuses_prompts_with_422_and_makes_nothing,
        safety::moderation_refuses_a_flagged_prompt_once_asked_and_an_outage_follows_moderation_fail,
        safety::a_takedown_answers_451_on_every_url_of_the_image_and_leaves_nothing_in_s3,
        scopes::the_entries_list_matches_the_hit_counts_clients_saw,
        scopes::enhance_makes_one_text_call_and_one_image_call_for_ten_identical_requests,
        variants::twenty_concurrent_requests_for_ten_variants_make_one_generation_and_eleven_objects,
        variants::a_client_derives_at_most_its_allowance_of_variants_and_cached_ones_stay_served if Runtime::knows_the_client,
        public::the_budget_refuses_misses_with_429_but_serves_hits,
        // wash's directory store increments by a read and a write.
        public::stats_are_exact_after_concurrent_hits if Runtime::counts_exactly,
        public::purge_removes_the_entry_and_the_object,
        resilience::fifty_concurrent_identical_misses_make_one_provider_call,
        resilience::rounds_of_concurrent_identical_misses_never_generate_twice,
        scale::two_hosts_on_one_store_share_cache_counts_and_single_flight if Runtime::counts_exactly,
        hits::a_hundred_concurrent_hits_count_exactly if Runtime::counts_exactly,
        deploy::an_app_pushed_to_a_registry_runs_from_it if |r| matches!(r, Runtime::Spin(_)),
        telemetry::a_miss_is_one_trace_with_its_outbound_calls if |r| matches!(r, Runtime::Spin(_)),
        cli::warm_makes_each_image_once_and_every_url_is_a_hit_after,
        progressive::ten_concurrent_progressive_misses_make_one_generation_and_each_client_paints_before_it,
        progressive::a_refused_progressive_miss_ends_with_the_error_frame_and_stores_nothing,
        progressive::a_client_that_hangs_up_after_the_first_part_does_not_stop_the_image,
        progressive::openais_previews_reach_the_client_as_they_stream,
    ];
    let mut trials = trials;
    for runtime in Runtime::MATRIX {
        let run = !args.list && available(runtime);
        for s in matrix.iter().filter(|s| (s.runs_on)(runtime)) {
            let (test, name) = (s.test, s.name);
            trials.push(
                Trial::test(format!("{}::{}", runtime.name(), s.name), move || {
                    support::alone_or_together(name, || runtime::with(runtime, test));
                    Ok(())
                })
                .with_ignored_flag(!run),
            );
        }
    }
    let garage = if args.list { None } else { Some(support::start_garage()) };
    let conclusion = libtest_mimic::run(&args, trials);
    let whole_run = !args.list && args.filter.is_none() && args.skip.is_empty();
    if whole_run && !conclusion.has_failed() {
        // Every route and status the tests observed must be in docs/openapi.yaml.
        let observed = support::http::observed();
        let undocumented = openapi::undocumented(&observed);
        if !undocumented.is_empty() {
            eprintln!(
                "docs/openapi.yaml does not describe what the tests observed:\n{}",
                undocumented.join("\n")
            );
            drop(garage);
            std::process::exit(101);
        }
        println!("openapi: all {} observed exchanges are described in docs/openapi.yaml", observed.len());
        // No host log of the whole run holds a credential the tests used.
        let (lines, checked, found) = support::check_suite_log();
        if !found.is_empty() {
            eprintln!("the hosts' logs hold credentials the tests used: {found:?}");
            drop(garage);
            std::process::exit(101);
        }
        println!("logs: none of the {checked} keys, secrets and signatures the tests used is in the {lines} lines the hosts logged");
    }
    drop(garage);
    conclusion.exit();
}
