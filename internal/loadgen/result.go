package loadgen

import "github.com/HdrHistogram/hdrhistogram-go"

// Result holds the figures of one benchmark run. Its JSON field names are
// stable; `herald bench --json` prints it. Durations are in seconds or in
// microseconds as their names say, memory in bytes. Figures that could not
// be measured (no PID, idle mode) are zero.
type Result struct {
	// SubURL is the subscribe URL.
	SubURL string `json:"sub_url"`
	// PubURL is the publish URL; empty in idle mode.
	PubURL string `json:"pub_url"`
	// SubURLs and PubURLs are the further subscribe and publish URLs
	// ([Config.SubURLs], [Config.PubURLs]), omitted when there are none.
	SubURLs []string `json:"sub_urls,omitempty"`
	PubURLs []string `json:"pub_urls,omitempty"`
	// PID is the server's process id, or zero.
	PID int `json:"pid"`
	// Subscribers is the number of subscriber connections asked for.
	Subscribers int `json:"subscribers"`
	// Publishers is the number of concurrent publishers.
	Publishers int `json:"publishers"`
	// Rate is the requested publish rate in events/s; zero is flat out.
	Rate float64 `json:"rate"`
	// Size is the payload size in bytes.
	Size int `json:"size"`

	// Connected is the number of subscriber connections opened.
	Connected int `json:"connected"`
	// ConnectErrors is the number of connections that could not be opened.
	ConnectErrors int `json:"connect_errors"`
	// ConnectError is the first connection error, if any.
	ConnectError string `json:"connect_error,omitempty"`
	// ConnectSeconds is the wall time taken to open all connections.
	ConnectSeconds float64 `json:"connect_seconds"`
	// ConnectUs is the time from dial to response head, per connection.
	ConnectUs Latency `json:"connect_us"`

	// ServerRSSBeforeBytes is the server's VmRSS before connecting.
	ServerRSSBeforeBytes int64 `json:"server_rss_before_bytes"`
	// ServerRSSConnectedBytes is the server's VmRSS once all subscribers are connected and settled.
	ServerRSSConnectedBytes int64 `json:"server_rss_connected_bytes"`
	// ServerRSSAfterBytes is the server's VmRSS after the publish phase, before disconnecting.
	ServerRSSAfterBytes int64 `json:"server_rss_after_bytes"`
	// ServerRSSPerSubscriberBytes is (connected - before) / connected subscribers.
	ServerRSSPerSubscriberBytes float64 `json:"server_rss_per_subscriber_bytes"`

	// WarmupEvents is the number of events published during warmup.
	WarmupEvents uint64 `json:"warmup_events"`
	// Published is the number of measured events the hub accepted (2xx).
	Published uint64 `json:"published"`
	// PublishErrors is the number of measured publishes that failed.
	PublishErrors uint64 `json:"publish_errors"`
	// PublishError is the first publish error, if any.
	PublishError string `json:"publish_error,omitempty"`
	// PublishSeconds is the wall time of the measured publish phase.
	PublishSeconds float64 `json:"publish_seconds"`
	// PublishesPerSec is Published / PublishSeconds.
	PublishesPerSec float64 `json:"publishes_per_sec"`
	// PublishUs is the publish request latency (send to response body read).
	PublishUs Latency `json:"publish_us"`

	// Expected is Published × Connected: the deliveries a lossless hub makes.
	Expected uint64 `json:"expected"`
	// Received is the number of distinct measured deliveries.
	Received uint64 `json:"received"`
	// Lost is Expected - Received, or zero.
	Lost uint64 `json:"lost"`
	// LossRatio is Lost / Expected.
	LossRatio float64 `json:"loss_ratio"`
	// OutOfOrder is the number of deliveries of an event older than one
	// already received on the same connection.
	OutOfOrder uint64 `json:"out_of_order"`
	// Duplicates is the number of deliveries of an event already received
	// on the same connection.
	Duplicates uint64 `json:"duplicates"`
	// Disconnects is the number of subscriber connections lost during the run.
	Disconnects int `json:"disconnects"`
	// DeliveriesPerSec is Received divided by the time from the start of
	// the measured phase to the last receipt.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	// LatencyUs is the time from the publish request being sent to the
	// event's receipt by a subscriber, over all measured deliveries.
	LatencyUs Latency `json:"latency_us"`
	// ReceiveClock says how receipts were timed: "kernel" (the socket's
	// receive timestamps: the reader's own delays do not count) or "user"
	// (this process's clock when the bytes were read, on some reads or all).
	ReceiveClock string `json:"receive_clock"`

	// ServerCPUSeconds is the server's user+system CPU time during the
	// measured phase (including drain), from /proc/PID/stat.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// ServerCPUUsPerDelivery is ServerCPUSeconds per received delivery, in µs.
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	// GeneratorCPUSeconds is this process's CPU time during the measured phase.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`
	// GeneratorCPUUsPerDelivery is GeneratorCPUSeconds per received delivery, in µs.
	GeneratorCPUUsPerDelivery float64 `json:"generator_cpu_us_per_delivery"`
}

// Latency summarizes a latency distribution in microseconds. Its zero value
// means no samples.
type Latency struct {
	// Count is the number of samples.
	Count int64 `json:"count"`
	// Min is the smallest sample.
	Min int64 `json:"min"`
	// Mean is the mean sample.
	Mean float64 `json:"mean"`
	// P50 is the median.
	P50 int64 `json:"p50"`
	// P90 is the 90th percentile.
	P90 int64 `json:"p90"`
	// P99 is the 99th percentile.
	P99 int64 `json:"p99"`
	// P999 is the 99.9th percentile.
	P999 int64 `json:"p999"`
	// Max is the largest sample.
	Max int64 `json:"max"`
}

// Histogram range: 1µs to 10 minutes, 3 significant digits.
const (
	histMin = 1
	histMax = 600_000_000
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, 3)
}

func record(h *hdrhistogram.Histogram, us int64) {
	if us < histMin {
		us = histMin
	} else if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us) // in range: cannot fail
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}
