"""The analyzer's warm-up from Kafka (inline transport): a camera's earlier image messages, read again.

After a restart or a rebalance the analyzer rebuilds a camera's detector and episodes by replaying
its last analysis.warmup_frames frames. In files mode those come from the image database; in inline
mode the messages carry the images, so they come from the camera's partition: seek back from the
frame's timestamp in windows until enough of the camera's earlier frames (seq below the frame's) are
found. The same decoder turns them into frames, so a replay sees exactly what the live run saw.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from kafka.partitioner.default import murmur2
from kafka.structs import TopicPartition

from image_pipeline.config import Config
from image_pipeline.kafka.reading import short_lived_consumer
from image_pipeline.records.inline import split_value

logger = logging.getLogger(__name__)
T = TypeVar("T")
READ_TIMEOUT_S = 30.0


class KafkaHistory(Generic[T]):
    """StageSpec.history over the images topic: one camera's earlier messages, decoded on demand."""

    def __init__(self, cfg: Config, decode: Callable[[bytes | None], T],
                 camera_of: Callable[[T], tuple[str, int, float]]) -> None:
        self.cfg = cfg
        self.decode = decode
        self.camera_of = camera_of  # item -> (camera id, seq, captured_at)
        self._consumer: Any = None

    def __call__(self, item: T) -> Iterator[Callable[[], T]]:
        """Loaders of the camera's last warmup_frames messages before this item, oldest first."""
        camera_id, seq, captured_at = self.camera_of(item)
        for value in self.camera_values(camera_id, seq, captured_at):
            yield functools.partial(self.decode, value)

    def camera_values(self, camera_id: str, before_seq: int, captured_at: float) -> list[bytes]:
        """Values of the camera's messages with seq < before_seq, the last warmup_frames of them."""
        consumer = self._reader()
        tp = self._partition_of(consumer, camera_id)
        consumer.assign([tp])
        begin = consumer.beginning_offsets([tp])[tp]
        end = consumer.end_offsets([tp])[tp]
        found = consumer.offsets_for_times({tp: int(captured_at * 1000)}).get(tp)
        anchor = end if found is None else found.offset
        wanted = self.cfg.analysis.warmup_frames
        window = max(4 * wanted, 256)
        by_seq: dict[int, bytes] = {}
        lo, hi = max(begin, anchor - window), end
        while True:
            self._scan(consumer, tp, lo, hi, camera_id.encode(), before_seq, by_seq)
            if len(by_seq) >= wanted or lo <= begin:
                break
            lo, hi = max(begin, lo - window), lo
        seqs = sorted(by_seq)[-wanted:]
        logger.info("camera=%s warm-up from Kafka: %d frame(s) before seq %d", camera_id, len(seqs), before_seq)
        return [by_seq[s] for s in seqs]

    def _scan(self, consumer: Any, tp: TopicPartition, lo: int, hi: int, key: bytes, before_seq: int,
              by_seq: dict[int, bytes]) -> None:
        """Read [lo, hi) of the partition, keeping the camera's values below before_seq; stop at the item."""
        consumer.seek(tp, lo)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while consumer.position(tp) < hi:
            if time.monotonic() > deadline:
                raise TimeoutError(f"warm-up read of {tp.topic}[{tp.partition}] {lo}..{hi} took over "
                                   f"{READ_TIMEOUT_S:.0f} s")
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset >= hi:
                    return
                if record.key != key:
                    continue
                seq = split_value(record.value)[0].get("seq")
                if not isinstance(seq, int):
                    continue  # a bad message: the live run dead-lettered it, the replay skips it
                if seq >= before_seq:
                    return  # the item itself or later: everything before it has been read
                by_seq[seq] = record.value

    def _partition_of(self, consumer: Any, camera_id: str) -> TopicPartition:
        """The partition the receiver's keyed sends put this camera on (the producer's murmur2)."""
        topic = self.cfg.topics.images.name
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            raise TimeoutError(f"no metadata for topic {topic}")
        index = (murmur2(camera_id.encode()) & 0x7FFFFFFF) % len(partitions)
        return TopicPartition(topic, partitions[index])

    def _reader(self) -> Any:
        if self._consumer is None:
            self._consumer = short_lived_consumer(self.cfg, READ_TIMEOUT_S)
        return self._consumer

    def close(self) -> None:
        """Close the reader, if one was opened."""
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
