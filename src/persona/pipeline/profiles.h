#pragma once
// Profiles end to end: read the store, add what the demand models know (sentiment and demand
// category of texts, purchase propensity), build, tag, segment, and write the profiles back to
// the store; update only the users with new events or texts; export.
#include <cstdint>
#include <optional>
#include <ostream>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/pipeline/config.h"
#include "persona/profile/builder.h"
#include "persona/profile/segments.h"
#include "persona/profile/tags.h"
#include "persona/store/store.h"

namespace persona::pipeline {

struct ProfileRunReport {
  std::string mode;  // build | update | rebuild (an update whose as_of moved)
  int64_t as_of = 0;
  size_t users = 0, events = 0, texts = 0, updated_users = 0, written = 0;
  size_t events_after_as_of = 0;  // left out: they happen after the time the profiles describe
  double seconds = 0;
  std::vector<std::string> models;  // the demand models used
  nlohmann::json segments;          // the segment model (build) or null
  nlohmann::json to_json() const;
};

// Runs the writes of a build or update (the profiles, then the build's record). Everything
// before them only reads the store, so a server computes beside ingest and passes a guard that
// takes its writer lock just for the writes. An erasure that commits while profiles are computed
// voids them (the store refuses the write): build and update compute them again, so a profile of
// someone erased is never written back.
using ProfileWriteGuard = std::function<void(const std::function<void()>& write)>;

// Builds every profile. `as_of` absent: midnight after the last event.
ProfileRunReport build_profiles(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                                std::optional<int64_t> as_of = std::nullopt, const ProfileWriteGuard& guard = {});

// Recomputes only the users with events or texts added since the last build or update (from
// their whole history, against the catalogue frozen at the build), re-ranks the scores among all
// users, re-evaluates tags and gives updated users their nearest segment. Events past the
// build's as_of move it forward, which changes every profile: that update is a full rebuild.
ProfileRunReport update_profiles(store::Store& store, const ProfileConfig& config, const std::string& models_dir,
                                 const ProfileWriteGuard& guard = {});

std::vector<profile::UserProfile> load_profiles(store::Store& store);

// Each user's learned segment, by user id: what recommendations use as "your segment".
using SegmentsByUser = std::unordered_map<std::string, int32_t>;
// From the stored profiles (empty before `persona profile build`): what serving knows.
SegmentsByUser stored_segments(store::Store& store);
// As of a time: profiles from the events before `as_of` only (no text models), segmented with
// the config's options. What an evaluation at a split may know without seeing past it.
SegmentsByUser segments_as_of(const store::EventColumns& events, const ProfileConfig& config, int64_t as_of);
std::optional<profile::SegmentModel> load_segments(store::Store& store);

// Profiles straight from the config's sources (read, map, clean, profile; no store), for RFM
// tables of a file (task R2). Only the kept rows' events count. Without a catalogue there are no
// affinities or price features: RFM, activity and funnel.
struct FileProfiles {
  std::vector<profile::UserProfile> profiles;
  int64_t rows_read = 0, rows_kept = 0;
  double seconds = 0;
};
FileProfiles profiles_from_sources(const Config& config, std::optional<int64_t> as_of, bool progress);
// user,recency_days,frequency,monetary,r_score,f_score,m_score,rfm_segment for users with purchases.
void write_rfm_csv(const std::vector<profile::UserProfile>& profiles, std::ostream& out);

// Writes every stored profile as JSON Lines (the full profile) or CSV (the schema's columns).
// `user_id`, when given, replaces each user's id (pseudonyms for analysts' exports).
size_t export_profiles(store::Store& store, const std::string& format, std::ostream& out,
                       const std::function<std::string(const std::string&)>& user_id = {});

}  // namespace persona::pipeline
