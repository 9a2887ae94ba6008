// Campaign parameters read from the page URL, as GA4 reads them from the page
// location (SPEC §2): collectors often put utm_* and the ads platforms' click
// ids only in the landing page's query string.
#ifndef KPISTREAM_INGEST_PAGE_URL_H_
#define KPISTREAM_INGEST_PAGE_URL_H_

#include <string>

#include "absl/strings/string_view.h"
#include "aggregate/event.h"

namespace kpistream {

// Fills the event's empty utm_source, utm_medium and utm_campaign from the
// same-named query parameters of its page_url, and an empty click_id from
// the first present of gclid, gbraid, wbraid, msclkid, dclid, fbclid, ttclid,
// li_fat_id (as "<name>-<value>", so that the ChannelClassifier knows which
// platform it is). Fields the event already carries win over the URL. Values
// are percent-decoded ('+' is a space); a value that would not decode to
// valid UTF-8 is kept as written; values are cut to kMaxEventValueBytes
// (aggregate/event.h).
void FillCampaignFromPageUrl(Event* event);

// Where FillCampaignFromPageUrl(EventView*) keeps the values it cannot view
// in the page URL (percent-decoded ones, the click id with its parameter's
// name). Reused from event to event, it allocates only when one grows.
struct CampaignStorage {
  std::string utm_source, utm_medium, utm_campaign, click_id, click_value;
};

// The same for a view: filled fields view the page URL or *storage, valid
// while both are (and *storage is not used again).
void FillCampaignFromPageUrl(EventView* event, CampaignStorage* storage);

// Decodes %XX escapes and '+' (application/x-www-form-urlencoded); malformed
// escapes are kept as written. The result may be any bytes.
std::string PercentDecode(absl::string_view text);

// The byte that the two hex digits starting `s` stand for (the "41" of
// "%41" or of an access log's "\x41"); false when `s` starts otherwise.
bool HexByte(absl::string_view s, char* byte);

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_PAGE_URL_H_
