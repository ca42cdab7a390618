"""Stage: TweetSumm ingestion (readers for its three source layouts, cleaning, validation, the `org/tweetsumm-clean`
builder in `tweetsumm`) and the `org/tweetsumm-provocation` split (`provocation`)."""
