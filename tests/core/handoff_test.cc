#include "persona/core/handoff.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

namespace persona {

TEST(Handoff, DeliversEveryItemInOrderThenTheError) {
  Handoff<int> h(2);
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) h.push(i);
    h.finish(std::make_exception_ptr(std::runtime_error("disk on fire")));
  });
  for (int i = 0; i < 1000; ++i) {
    auto item = h.pop();
    ASSERT_TRUE(item);
    ASSERT_EQ(*item, i);
  }
  EXPECT_THROW(h.pop(), std::runtime_error);
  producer.join();
}

TEST(Handoff, StopReleasesABlockedProducer) {
  Handoff<int> h(1);
  bool accepted_after_stop = true;
  std::thread producer([&] {
    h.push(1);
    accepted_after_stop = h.push(2) && h.push(3);  // blocks until stop()
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  h.stop();
  producer.join();
  EXPECT_FALSE(accepted_after_stop);
}

TEST(Handoff, RecyclesItemsAndStartsOverAfterReset) {
  Handoff<std::string> h(4);
  h.recycle(std::string(1000, 'x'));
  EXPECT_EQ(h.take_empty().size(), 1000u);
  EXPECT_TRUE(h.take_empty().empty());
  h.push("a");
  h.finish();
  h.stop();
  h.reset();
  EXPECT_FALSE(h.has_ready());
  h.push("b");
  EXPECT_EQ(*h.pop(), "b");
}

}  // namespace persona
