FROM ubuntu
RUN echo hello  \  
world
RUN echo tab \	
  end
