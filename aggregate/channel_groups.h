// The channels of GA4's default channel grouping, as ChannelClassifier
// returns them: the values of the `channel` label (and of config filters on
// it). Header-only, so that config validation needs nothing else.
#ifndef KPISTREAM_AGGREGATE_CHANNEL_GROUPS_H_
#define KPISTREAM_AGGREGATE_CHANNEL_GROUPS_H_

#include <array>

#include "absl/strings/string_view.h"

namespace kpistream {

// Every channel Classify() can return, in GA4's rule order: the values of the
// `channel` label (and of config filters on it).
inline constexpr std::array<absl::string_view, 19> kChannelGroups = {
    "Direct",         "Cross-network", "Paid Shopping",
    "Paid Search",    "Paid Social",   "Paid Video",
    "Display",        "Paid Other",    "Organic Shopping",
    "Organic Social", "Organic Video", "Organic Search",
    "Referral",       "Email",         "Affiliates",
    "Audio",          "SMS",           "Mobile Push Notifications",
    "Unassigned"};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_CHANNEL_GROUPS_H_
