#include "core/env/sync.h"

namespace sluice {

void WaitQueue::link(Waiter& waiter) {
  assert(!waiter.linked);
  waiter.previous = tail_;
  waiter.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &waiter;
  } else {
    head_ = &waiter;
  }
  tail_ = &waiter;
  waiter.linked = true;
}

void WaitQueue::unlink(Waiter& waiter) {
  if (!waiter.linked) return;
  if (waiter.previous != nullptr) {
    waiter.previous->next = waiter.next;
  } else {
    head_ = waiter.next;
  }
  if (waiter.next != nullptr) {
    waiter.next->previous = waiter.previous;
  } else {
    tail_ = waiter.previous;
  }
  waiter.previous = waiter.next = nullptr;
  waiter.linked = false;
}

WakeReason WaitQueue::wait(Instant deadline) {
  Scheduler& scheduler = Scheduler::current();
  Waiter waiter;
  waiter.scheduler = &scheduler;
  waiter.ticket = scheduler.prepare_wait();
  link(waiter);
  // Unlink on every way out, including FiberCancelled unwinding through here.
  struct Unlinker {
    WaitQueue& queue;
    Waiter& waiter;
    ~Unlinker() { queue.unlink(waiter); }
  } unlinker{*this, waiter};
  return scheduler.suspend(waiter.ticket, deadline);
}

bool WaitQueue::notify_one() {
  while (head_ != nullptr) {
    Waiter* waiter = head_;
    unlink(*waiter);
    if (waiter->scheduler->wake(waiter->ticket)) return true;
  }
  return false;
}

void WaitQueue::notify_all() {
  while (notify_one()) {
  }
}

bool Event::wait(Instant deadline) {
  while (!set_) {
    if (waiters_.wait(deadline) != WakeReason::notified) return set_;
  }
  return true;
}

bool Semaphore::try_acquire(std::size_t count) {
  if (waiting_ > 0 || permits_ < count) return false;
  permits_ -= count;
  return true;
}

bool Semaphore::acquire(std::size_t count, Instant deadline) {
  if (try_acquire(count)) return true;
  waiting_++;
  struct Leave {
    Semaphore& semaphore;
    ~Leave() {
      semaphore.waiting_--;
      // A permit may be free for the next waiter now that this one left the line.
      if (semaphore.permits_ > 0) semaphore.waiters_.notify_one();
    }
  } leave{*this};
  while (permits_ < count) {
    if (waiters_.wait(deadline) != WakeReason::notified && permits_ < count) return false;
  }
  permits_ -= count;
  return true;
}

void Semaphore::release(std::size_t count) {
  permits_ += count;
  waiters_.notify_one();
}

}  // namespace sluice
