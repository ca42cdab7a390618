"""TweetSumm ingestion: readers for its three source layouts, cleaning, validation, and the `org/tweetsumm-clean`
builder (`dialoghub.data.tweetsumm.build_and_publish`)."""
